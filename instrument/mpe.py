"""MPE (MIDI Polyphonic Expression: MIDI 1.0 MPE, M1-100-UM v1.1) as the MIDI input sees it: zones, the MPE
Configuration Message, pitch-bend ranges, and each member channel's timbre.

An MPE controller (ROLI Seaboard, LinnStrument, Osmose, Push 3) plays each note on a channel of its own,
a *member channel* of a *zone*, so that the channel's pitch bend, pressure and CC 74 belong to that note.
A zone's *manager channel* carries what applies to the whole zone. The lower zone is managed on channel 1
with members 2, 3, ...; the upper zone on channel 16 with members 15, 14, ... (channels 0-based here: 0
and 15). Zones come from the MIDI map's ``[mpe]`` section, or from the controller itself: the MPE
Configuration Message (RPN 6 on a manager channel, data = the number of member channels, 0 = no zone),
which most MPE controllers send when they connect. Pitch-bend ranges default to 48 semitones on member
channels and 2 on the manager, as the specification says, and RPN 0 (pitch-bend sensitivity) changes
them for the zone.

What each message means (instrument/midi.py carries it out):

- a note on a member channel is an MPE voice: that channel's pitch bend glides its pitch (semitones =
  bend range x bend), its channel pressure its level (:data:`~instrument.commands.PRESSURE_RANGE_DB`
  from none to full), and the channel's last CC 74 *before* the note-on chooses its timbre (a latent
  offset; MPE controllers send it just before the note). A clip cannot change its latent while it
  plays, so CC 74 after the note-on waits for the channel's next note.
- two notes overlapping on one member channel (the specification asks controllers not to, receivers to
  cope): both follow the channel's expression, and each note-off releases its own note.
- a bend, pressure or CC 74 before a note-on is the note's starting state.
- a note on a manager channel is an ordinary note (no per-note expression); the manager's pitch bend
  bends the whole zone (the map's bend parameter) over the manager's range; the manager's sustain pedal
  holds the zone's notes; its other controllers go through the map as on any channel.
- member channels take no other controllers (in MPE they are the note's, not the instrument's): counted
  as ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

MEMBER_BEND_RANGE = 48.0  # semitones: the specification's default on member channels
MANAGER_BEND_RANGE = 2.0  # and on the manager channel
TIMBRE_CC = 74
RPN_MSB, RPN_LSB, DATA_MSB, DATA_LSB = 101, 100, 6, 38
RPN_BEND_RANGE, RPN_MCM = (0, 0), (0, 6)
NULL_RPN = (127, 127)
LOWER, UPPER = 0, 15  # the zones' manager channels, 0-based


@dataclass(frozen=True)
class Zone:
    manager: int  # 0: the lower zone, 15: the upper
    members: tuple[int, ...]
    bend_range: float = MEMBER_BEND_RANGE  # semitones at full bend on a member channel
    manager_bend_range: float = MANAGER_BEND_RANGE

    @property
    def name(self) -> str:
        return "lower" if self.manager == LOWER else "upper"


def _members(manager: int, n: int) -> tuple[int, ...]:
    n = max(0, min(15, n))
    return tuple(range(1, 1 + n)) if manager == LOWER else tuple(range(14, 14 - n, -1))


class MpeState:
    """The zones, the registered parameter each channel has selected, and each member channel's timbre.
    Used from the MIDI input thread only."""

    def __init__(self, lower: int = 0, upper: int = 0, bend_range: float = MEMBER_BEND_RANGE,
                 manager_bend_range: float = MANAGER_BEND_RANGE, timbre_cc: int = TIMBRE_CC) -> None:
        self.zones: dict[int, Zone] = {}
        self.timbre_cc = timbre_cc
        self._bend_defaults = (bend_range, manager_bend_range)
        self._role: dict[int, tuple[Zone, bool]] = {}
        self._rpn = [NULL_RPN] * 16
        self._data_msb = [0] * 16
        self._timbre = [64] * 16
        self.plain_bend_range = 2.0  # the last RPN 0 on a channel outside every zone (the map's bend range)
        for manager, n in ((LOWER, lower), (UPPER, upper)):
            if n:
                self.configure(manager, n)

    @property
    def active(self) -> bool:
        return bool(self.zones)

    def role(self, channel: int) -> tuple[Zone, bool] | None:
        """``(zone, is_manager)`` for a channel of a zone, else None."""
        return self._role.get(channel)

    def configure(self, manager: int, n: int) -> None:
        """The MPE Configuration Message: the zone managed on ``manager`` gets ``n`` member channels (0: no
        zone), with the default bend ranges. A newer zone takes channels from the other zone, which shrinks,
        or goes if nothing is left of it (the specification's rule)."""
        self.zones.pop(manager, None)
        if n > 0:
            zone = Zone(manager, _members(manager, n), *self._bend_defaults)
            self.zones[manager] = zone
            other = self.zones.get(UPPER if manager == LOWER else LOWER)
            if other is not None:
                taken = set(zone.members) | {manager}
                rest = tuple(c for c in other.members if c not in taken)
                if other.manager in taken or not rest:
                    del self.zones[other.manager]
                else:
                    self.zones[other.manager] = Zone(other.manager, rest, other.bend_range, other.manager_bend_range)
        self._role = {}
        for z in self.zones.values():
            self._role[z.manager] = (z, True)
            self._role.update({c: (z, False) for c in z.members})

    def registered(self, channel: int, cc: int, value: int) -> str | None:
        """Registered-parameter messages (CC 101/100 select, CC 6/38 set): what they did, as a word for the
        stats (``"select"``, ``"mcm"``, ``"bend_range"``, ``"plain_bend_range"``, ``"other"``), or None when ``cc`` is not one of
        them, or is data entry with no parameter selected (then the map may use it)."""
        if cc == RPN_MSB:
            self._rpn[channel] = (value, self._rpn[channel][1])
            return "select"
        if cc == RPN_LSB:
            self._rpn[channel] = (self._rpn[channel][0], value)
            return "select"
        if cc not in (DATA_MSB, DATA_LSB) or self._rpn[channel] == NULL_RPN:
            return None
        rpn = self._rpn[channel]
        if cc == DATA_MSB:
            self._data_msb[channel] = value
        if rpn == RPN_MCM and cc == DATA_MSB:
            if channel not in (LOWER, UPPER):
                return "other"  # an MCM on a channel that manages no zone means nothing
            self.configure(channel, value)
            return "mcm"
        if rpn == RPN_BEND_RANGE:
            semitones = self._data_msb[channel] + (value / 100.0 if cc == DATA_LSB else 0.0)
            if self.role(channel) is None:  # an ordinary channel: the map's own pitch-bend range
                self.plain_bend_range = min(semitones, 48.0)
                return "plain_bend_range"
            self._set_bend_range(channel, semitones)
            return "bend_range"
        return "other"

    def _set_bend_range(self, channel: int, semitones: float) -> None:
        zone, manager = self._role[channel]
        changed = Zone(zone.manager, zone.members, zone.bend_range if manager else semitones,
                       semitones if manager else zone.manager_bend_range)
        self.zones[zone.manager] = changed
        self._role.update({c: (changed, r[1]) for c, r in self._role.items() if r[0].manager == zone.manager})

    def set_timbre(self, channel: int, value: int) -> None:
        self._timbre[channel] = value

    def timbre(self, channel: int) -> float:
        """The channel's last CC 74 as -1..1, 64 (the specification's centre) = 0."""
        v = self._timbre[channel]
        return (v - 64) / 63.0 if v >= 64 else (v - 64) / 64.0
