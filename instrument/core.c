/* GestureGAN's real-time core in C: the behaviour of instrument/core.py (PyCore, the numpy reference),
 * runnable inside PortAudio's callback with no Python interpreter. Built by instrument/ccore.py with the
 * system's C compiler and loaded with cffi (ABI mode: no Python headers needed).
 *
 * Threads: one producer (the Python control thread) pushes timed operations into `q` and reads returned
 * clip handles from `ret` and rendered audio from `mon`; one consumer (the audio callback, or the Python
 * thread itself offline) renders. Each ring has one writer per index; indices are published with
 * release stores and read with acquire loads. Nothing here allocates, locks or waits after gg_new.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GG_ASAP (-1)
#define GG_OPQ 4096          /* operations in flight Python -> core */
#define GG_HEAP 2048         /* operations waiting for their sample */
#define GG_DRAIN 256         /* operations taken from the queue per block (bounded work) */
#define GG_RETQ 16384        /* clip handles the core let go of, core -> Python */
#define GG_MAXV 160
#define GG_NCHAN 16
#define GG_MAXBLOCK 8192
#define GG_STAMPS 4096
#define GG_MAX_OPS 64        /* operations applied per block; the rest wait a block */
#define GG_RMS 1024
#define GG_PI 3.14159265358979323846

enum { OP_START = 1, OP_RELEASE, OP_EXPRESS, OP_SET, OP_WANT, OP_NEXT, OP_STOP };
enum { S_VOICES_GAIN, S_LAYER_GAIN, S_PITCH, S_GAIN, S_CEILING, S_XFADE };

typedef struct { const float *clip; int64_t len, handle; int owns; } ref_t;

typedef struct {
    int64_t time, seq, serial;
    int32_t kind, note, channel, attack, release, poly, steal, what;
    double x, y;
    ref_t ref;
} op_t;

typedef struct {
    ref_t ref;
    double ratio, bend, pos;
    float gain, level, release_step, expr_gain, expr_now;
    int32_t attack_n, release_n, note, channel, releasing, done;
    int64_t started_at, id;
} voice_t;

typedef struct { double value, target, step; int64_t samples; } smooth_t;

typedef struct gg_core {
    double sr;
    int32_t channels, block;
    int64_t t;
    op_t q[GG_OPQ];
    uint64_t q_w, q_r;
    op_t heap[GG_HEAP];
    int32_t nheap;
    int64_t seq;
    int64_t ret[GG_RETQ];
    uint64_t ret_w, ret_r;
    voice_t v[GG_MAXV];
    int32_t nv;
    int64_t voice_ids;
    double expr_ratio[GG_NCHAN];
    float expr_gain[GG_NCHAN];
    int32_t expr_set[GG_NCHAN];
    ref_t cur, old, want, next;
    int64_t want_serial, next_serial, layer_serial;
    double pos, old_pos;
    int64_t fade_t, fade_n, xfade, loops, crossfades;
    smooth_t vg, lg, pitch, mg;
    double ceiling, dc_r, x1, y1, lim_gain, rel_per_sample;
    int64_t attack;
    double meter, meter_decay;
    int64_t recent_handle, recent_t;
    float *mon;
    int64_t mon_cap;
    uint64_t mon_w, mon_r;
    int32_t mon_on;
    double stamps[GG_STAMPS][2];
    double last_cb_start, max_gap_ms, max_callback_ms, busy_ms;
    /* counters (gg_state) */
    int64_t nonfinite, limited_blocks, stolen, late_ops, deferred_ops, dropped_ops, ret_lost, mon_lost;
    int64_t callbacks, frames, underflows, slow_callbacks, stalled_callbacks;
    float mono[GG_MAXBLOCK], acc[GG_MAXBLOCK], tmp[GG_MAXBLOCK], tmp2[GG_MAXBLOCK];
    double y[GG_MAXBLOCK];
} gg_core;

typedef struct { double inputBufferAdcTime, currentTime, outputBufferDacTime; } gg_timeinfo;

/* ---- smoothing ---------------------------------------------------------------------------------- */
static void sm_init(smooth_t *s, double v, int64_t samples) { s->value = s->target = v; s->step = 0; s->samples = samples < 1 ? 1 : samples; }
static void sm_set(smooth_t *s, double target) { s->target = target; s->step = (target - s->value) / (double)s->samples; }
/* fills g[0..n) with the next n values; returns 1 when it moves (else g is untouched and s->value holds) */
static int sm_block(smooth_t *s, float *g, int64_t n) {
    if (s->value == s->target) return 0;
    double last = s->value;
    for (int64_t k = 0; k < n; k++) {
        double r = s->value + s->step * (double)(k + 1);
        if (s->step > 0 ? r > s->target : r < s->target) r = s->target;
        g[k] = (float)r;
        last = r;
    }
    if (n > 0) s->value = last;
    return 1;
}
static void sm_skip(smooth_t *s, int64_t n) {
    if (s->value == s->target || n <= 0) return;
    double r = s->value + s->step * (double)n;
    if (s->step > 0 ? r > s->target : r < s->target) r = s->target;
    s->value = r;
}

/* ---- clip handles ------------------------------------------------------------------------------- */
static void give_back(gg_core *c, ref_t *r) {
    if (r->clip && r->owns) {
        uint64_t w = c->ret_w, rd = __atomic_load_n(&c->ret_r, __ATOMIC_ACQUIRE);
        if (w - rd < GG_RETQ) { c->ret[w % GG_RETQ] = r->handle; __atomic_store_n(&c->ret_w, w + 1, __ATOMIC_RELEASE); }
        else c->ret_lost++;
    }
    r->clip = NULL; r->owns = 0; r->handle = 0; r->len = 0;
}

/* ---- resampled reading (linear interpolation; past the end is silence) ---------------------------- */
static double read_clip(const ref_t *r, double pos, double ratio, float *out, int64_t n) {
    const float *x = r->clip;
    int64_t len = r->len, last = len - 1;
    if (ratio == 1.0 && pos == floor(pos)) {
        int64_t i = (int64_t)pos;
        for (int64_t k = 0; k < n; k++) out[k] = (i + k < len) ? x[i + k] : 0.0f;
        return pos + (double)n;
    }
    for (int64_t k = 0; k < n; k++) {
        double p = pos + ratio * (double)k;
        int64_t i = (int64_t)floor(p);
        float fr = (float)(p - (double)i);
        out[k] = (i < last) ? x[i] * (1.0f - fr) + x[i + 1] * fr : 0.0f;
    }
    return pos + ratio * (double)n;
}

/* ---- voices ------------------------------------------------------------------------------------- */
static float loudness(const voice_t *v) {
    int64_t i = (int64_t)v->pos, m = v->ref.len - i;
    if (m > GG_RMS) m = GG_RMS;
    double s = 0;
    for (int64_t k = 0; k < m; k++) s += (double)v->ref.clip[i + k] * v->ref.clip[i + k];
    double rms = m > 0 ? sqrt(s / (double)m) : 0.0;
    return (float)(v->gain * v->level * v->expr_gain * (rms + 1e-9));
}
static void voice_release(voice_t *v, int64_t samples) {
    if (v->releasing) return;
    v->releasing = 1;
    v->release_step = (v->level > 1e-6f ? v->level : 1e-6f) / (float)(samples > 1 ? samples : 1);
}
static void voice_render(gg_core *c, voice_t *v, float *acc, int64_t n) {
    float *a = c->tmp;
    v->pos = read_clip(&v->ref, v->pos, v->ratio * v->bend, a, n);
    if (v->expr_now != v->expr_gain || v->expr_gain != 1.0f) {
        float g0 = v->expr_now, g1 = v->expr_gain;
        if (g0 != g1) for (int64_t k = 0; k < n; k++) a[k] *= g0 + (g1 - g0) * (float)(k + 1) / (float)(n > 1 ? n : 1);
        else for (int64_t k = 0; k < n; k++) a[k] *= g1;
        v->expr_now = g1;
    }
    if (v->releasing) {
        float e = v->level;
        for (int64_t k = 0; k < n; k++) { e = v->level - v->release_step * (float)(k + 1); if (e < 0) e = 0; a[k] *= e; }
        if (n) v->level = e;
    } else if (v->level < 1.0f) {
        float e = v->level;
        for (int64_t k = 0; k < n; k++) { e = v->level + (float)(k + 1) / (float)v->attack_n; if (e > 1.0f) e = 1.0f; a[k] *= e; }
        if (n) v->level = e;
    }
    for (int64_t k = 0; k < n; k++) acc[k] += a[k] * v->gain;
    if ((v->releasing && v->level <= 0.0f) || v->pos >= (double)(v->ref.len - 1)) v->done = 1;
}
static void voice_remove(gg_core *c, int32_t i) {
    give_back(c, &c->v[i].ref);
    memmove(&c->v[i], &c->v[i + 1], sizeof(voice_t) * (size_t)(c->nv - i - 1));
    c->nv--;
}
static void start_voice(gg_core *c, op_t *o, int64_t at) {
    int32_t poly = o->poly < 1 ? 1 : o->poly, sounding = 0;
    for (int32_t i = 0; i < c->nv; i++) sounding += !c->v[i].releasing;
    while (sounding >= poly) {  /* steal the quietest, quickly but without a click */
        int32_t victim = -1; float best = 0;
        for (int32_t i = 0; i < c->nv; i++) {
            if (c->v[i].releasing) continue;
            float l = loudness(&c->v[i]);
            if (victim < 0 || l < best) { victim = i; best = l; }
        }
        voice_release(&c->v[victim], o->steal);
        sounding--;
        c->stolen++;
    }
    int32_t cap = 4 * poly < GG_MAXV ? 4 * poly : GG_MAXV;
    if (c->nv >= cap) {  /* release tails pile up under fast triggering: drop the oldest tail */
        int32_t oldest = 0, found = 0;
        for (int32_t i = 0; i < c->nv; i++)
            if (c->v[i].releasing && (!found || c->v[i].started_at < c->v[oldest].started_at)) { oldest = i; found = 1; }
        voice_remove(c, oldest);
    }
    voice_t *v = &c->v[c->nv++];
    memset(v, 0, sizeof *v);
    v->ref = o->ref; o->ref.clip = NULL;
    v->ratio = o->x; v->gain = (float)o->y; v->bend = 1.0; v->expr_gain = v->expr_now = 1.0f;
    v->attack_n = o->attack > 1 ? o->attack : 1; v->release_n = o->release > 1 ? o->release : 1;
    v->note = o->note; v->channel = o->channel; v->started_at = at; v->id = ++c->voice_ids;
    if (v->channel >= 0 && v->channel < GG_NCHAN && c->expr_set[v->channel]) {
        v->bend = c->expr_ratio[v->channel]; v->expr_gain = v->expr_now = c->expr_gain[v->channel];
    }
    c->recent_handle = v->ref.handle; c->recent_t = at;
}

/* ---- the layer ---------------------------------------------------------------------------------- */
static void fade_to(gg_core *c, ref_t *to, int loop) {
    give_back(c, &c->old);
    c->old = c->cur; c->old_pos = c->pos;
    if (loop) { c->old.owns = 0; }  /* the same clip plays on: the new position keeps the handle */
    else if (to) { c->cur = *to; to->clip = NULL; to->owns = 0; }
    else { c->cur.clip = NULL; c->cur.owns = 0; c->cur.handle = 0; c->cur.len = 0; }
    c->pos = 0; c->fade_t = 0; c->fade_n = c->xfade > 1 ? c->xfade : 1;
}
static void layer_check(gg_core *c, int64_t at) {
    if (c->want.clip && !c->fade_n) {
        int same = c->cur.clip == c->want.clip;
        c->layer_serial = c->want_serial;
        c->recent_handle = c->want.handle; c->recent_t = at;
        fade_to(c, &c->want, 0);
        if (same) c->loops++; else c->crossfades++;
    }
}
static void layer_auto(gg_core *c, int64_t at) {
    layer_check(c, at);
    if (c->fade_n || !c->cur.clip) return;
    double ratio = pow(2.0, c->pitch.value / 12.0);
    if (((double)(c->cur.len - 1) - c->pos) / ratio > (double)(c->xfade + c->block)) return;
    if (c->next.clip) {
        c->layer_serial = c->next_serial;
        c->recent_handle = c->next.handle; c->recent_t = at;
        fade_to(c, &c->next, 0);
        c->crossfades++;
    } else {
        fade_to(c, NULL, 1);
        c->loops++;
    }
}
static void layer_render(gg_core *c, float *out, int64_t n, double ratio) {
    if (c->cur.clip) c->pos = read_clip(&c->cur, c->pos, ratio, out, n);
    else memset(out, 0, sizeof(float) * (size_t)n);
    if (!c->fade_n) return;
    float *o = c->tmp2;
    if (c->old.clip) c->old_pos = read_clip(&c->old, c->old_pos, ratio, o, n);
    else memset(o, 0, sizeof(float) * (size_t)n);
    for (int64_t k = 0; k < n; k++) {
        double t = (double)(c->fade_t + k + 1) / (double)c->fade_n;
        double a = (t < 0 ? 0 : t > 1 ? 1 : t) * (GG_PI / 2);
        out[k] = (float)((double)o[k] * cos(a) + (double)out[k] * sin(a));
    }
    c->fade_t += n;
    if (c->fade_t >= c->fade_n) { c->fade_n = 0; give_back(c, &c->old); }
}

/* ---- operations --------------------------------------------------------------------------------- */
static int op_before(const op_t *a, const op_t *b) { return a->time < b->time || (a->time == b->time && a->seq < b->seq); }
static void heap_push(gg_core *c, const op_t *o) {
    int32_t i = c->nheap++;
    c->heap[i] = *o;
    while (i > 0) {
        int32_t p = (i - 1) / 2;
        if (!op_before(&c->heap[i], &c->heap[p])) break;
        op_t t = c->heap[i]; c->heap[i] = c->heap[p]; c->heap[p] = t; i = p;
    }
}
static void heap_pop(gg_core *c, op_t *out) {
    *out = c->heap[0];
    c->heap[0] = c->heap[--c->nheap];
    int32_t i = 0;
    for (;;) {
        int32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < c->nheap && op_before(&c->heap[l], &c->heap[m])) m = l;
        if (r < c->nheap && op_before(&c->heap[r], &c->heap[m])) m = r;
        if (m == i) break;
        op_t t = c->heap[i]; c->heap[i] = c->heap[m]; c->heap[m] = t; i = m;
    }
}
static void drain(gg_core *c, int64_t t0) {
    uint64_t r = c->q_r, w = __atomic_load_n(&c->q_w, __ATOMIC_ACQUIRE);
    int taken = 0;
    while (r != w && taken < GG_DRAIN && c->nheap < GG_HEAP) {
        op_t o = c->q[r % GG_OPQ];
        r++; taken++;
        if (o.time == GG_ASAP) o.time = t0;
        else if (o.time < t0) { c->late_ops++; o.time = t0; }
        o.seq = c->seq++;
        heap_push(c, &o);
    }
    __atomic_store_n(&c->q_r, r, __ATOMIC_RELEASE);
}
static void apply(gg_core *c, op_t *o, int64_t at) {
    switch (o->kind) {
    case OP_START: start_voice(c, o, at); break;
    case OP_RELEASE:
        for (int32_t i = 0; i < c->nv; i++)
            if (o->note < 0 || (c->v[i].note == o->note && (o->channel < 0 || c->v[i].channel == o->channel)))
                voice_release(&c->v[i], c->v[i].release_n);
        break;
    case OP_EXPRESS:
        if (o->channel >= 0 && o->channel < GG_NCHAN) {
            c->expr_set[o->channel] = 1; c->expr_ratio[o->channel] = o->x; c->expr_gain[o->channel] = (float)o->y;
        }
        for (int32_t i = 0; i < c->nv; i++)
            if (c->v[i].channel == o->channel) { c->v[i].bend = o->x; c->v[i].expr_gain = (float)o->y; }
        break;
    case OP_SET:
        switch (o->what) {
        case S_VOICES_GAIN: sm_set(&c->vg, o->x); break;
        case S_LAYER_GAIN: sm_set(&c->lg, o->x); break;
        case S_PITCH: sm_set(&c->pitch, o->x); break;
        case S_GAIN: sm_set(&c->mg, o->x); break;
        case S_CEILING: c->ceiling = o->x; break;
        case S_XFADE: c->xfade = o->x < 1 ? 1 : (int64_t)o->x; break;
        }
        break;
    case OP_WANT:
        give_back(c, &c->want); give_back(c, &c->next);  /* the next was a neighbour of what played before: stale */
        c->want = o->ref; c->want_serial = o->serial; o->ref.clip = NULL;
        layer_check(c, at);
        break;
    case OP_NEXT:
        give_back(c, &c->next);
        c->next = o->ref; c->next_serial = o->serial; o->ref.clip = NULL;
        break;
    case OP_STOP:
        give_back(c, &c->want); give_back(c, &c->next);
        c->layer_serial = 0;
        if (c->cur.clip) fade_to(c, NULL, 0);
        break;
    }
    give_back(c, &o->ref);  /* an operation that did not keep its clip */
}

/* ---- rendering ---------------------------------------------------------------------------------- */
static void span(gg_core *c, int64_t start, int64_t stop) {
    int64_t n = stop - start;
    if (n <= 0) return;
    float *acc = c->acc, *g = c->tmp2;
    double ratio_now = pow(2.0, c->pitch.value / 12.0);
    sm_skip(&c->pitch, n);
    memset(acc, 0, sizeof(float) * (size_t)n);
    for (int32_t i = 0; i < c->nv; i++) voice_render(c, &c->v[i], acc, n);
    for (int32_t i = c->nv - 1; i >= 0; i--) if (c->v[i].done) voice_remove(c, i);
    if (sm_block(&c->vg, g, n)) for (int64_t k = 0; k < n; k++) acc[k] *= g[k];
    else { float v = (float)c->vg.value; for (int64_t k = 0; k < n; k++) acc[k] *= v; }
    float *m = c->mono + start;
    if (c->cur.clip || c->fade_n) {
        layer_render(c, m, n, ratio_now);
        if (sm_block(&c->lg, g, n)) for (int64_t k = 0; k < n; k++) m[k] = acc[k] + m[k] * g[k];
        else { float v = (float)c->lg.value; for (int64_t k = 0; k < n; k++) m[k] = acc[k] + m[k] * v; }
    } else memcpy(m, acc, sizeof(float) * (size_t)n);
}
static void safety(gg_core *c, float *x, int64_t n) {
    double *y = c->y;
    if (!(isfinite(c->x1) && isfinite(c->y1))) c->x1 = c->y1 = 0;
    for (int64_t k = 0; k < n; k++) {
        double v = x[k];
        if (!isfinite(v)) { c->nonfinite++; v = 0; }
        double out = v - c->x1 + c->dc_r * c->y1;
        c->x1 = v; c->y1 = out; y[k] = out;
    }
    float *g = c->tmp2;
    if (sm_block(&c->mg, g, n)) for (int64_t k = 0; k < n; k++) y[k] *= g[k];
    else for (int64_t k = 0; k < n; k++) y[k] *= c->mg.value;
    double peak = 0;
    for (int64_t k = 0; k < n; k++) { double a = fabs(y[k]); if (a > peak) peak = a; }
    double g0 = c->lim_gain, need = peak > 0 ? (c->ceiling / peak < 1 ? c->ceiling / peak : 1) : 1;
    if (need < g0) {  /* attack: down to the gain needed within `attack` samples */
        c->limited_blocks++;
        int64_t m = n < c->attack ? n : c->attack;
        for (int64_t k = 0; k < n; k++) y[k] *= k < m ? g0 + (need - g0) * (double)(k + 1) / (double)m : need;
        c->lim_gain = need;
    } else {  /* release: back towards 1, never above what this block allows */
        double r = 1, last = g0;
        for (int64_t k = 0; k < n; k++) {
            r *= c->rel_per_sample;
            double gk = 1.0 - (1.0 - g0) * r;
            if (gk > need) gk = need;
            y[k] *= gk; last = gk;
        }
        if (n) c->lim_gain = last;
    }
    float cl = (float)c->ceiling;
    if ((double)cl > c->ceiling) cl = nextafterf(cl, 0.0f);  /* float rounding must not lift the ceiling */
    for (int64_t k = 0; k < n; k++) { float v = (float)y[k]; x[k] = v > cl ? cl : v < -cl ? -cl : v; }
}
static void render_block(gg_core *c, float *out, int64_t n) {
    int64_t t0 = c->t, end = t0 + n, pos = 0;
    int applied = 0;
    drain(c, t0);
    layer_auto(c, t0);
    while (c->nheap && c->heap[0].time < end) {
        if (applied == GG_MAX_OPS) {  /* bounded work: the rest of this block's operations wait a block */
            for (int32_t i = 0; i < c->nheap; i++) c->deferred_ops += c->heap[i].time < end;
            break;
        }
        op_t o;
        heap_pop(c, &o);
        int64_t at = o.time > t0 + pos ? o.time : t0 + pos;
        span(c, pos, at - t0);
        pos = at - t0;
        apply(c, &o, at);
        applied++;
    }
    span(c, pos, n);
    float *m = c->mono;
    safety(c, m, n);
    float peak = 0;
    for (int64_t k = 0; k < n; k++) { float a = fabsf(m[k]); if (a > peak) peak = a; }
    double fall = c->meter * pow(c->meter_decay, (double)n);
    c->meter = peak > fall ? peak : fall;
    int32_t ch = c->channels;
    for (int64_t k = 0; k < n; k++) for (int32_t j = 0; j < ch; j++) out[k * ch + j] = m[k];
    if (c->mon_on) {  /* a copy for the recorder and the meters, read by Python off the audio thread */
        uint64_t w = c->mon_w, rd = __atomic_load_n(&c->mon_r, __ATOMIC_ACQUIRE);
        if ((int64_t)(w - rd) + n <= c->mon_cap) {
            for (int64_t k = 0; k < n; k++) memcpy(&c->mon[((w + (uint64_t)k) % (uint64_t)c->mon_cap) * (uint64_t)ch], &out[k * ch], sizeof(float) * (size_t)ch);
            __atomic_store_n(&c->mon_w, w + (uint64_t)n, __ATOMIC_RELEASE);
        } else c->mon_lost += n;
    }
    __atomic_store_n(&c->t, end, __ATOMIC_RELEASE);
}

/* ---- the interface (instrument/ccore.py) -------------------------------------------------------- */
gg_core *gg_new(double sr, int32_t channels, int32_t block, int64_t mon_frames, double voices_gain, double layer_gain,
                double pitch, double gain, double ceiling, int64_t sm_voices, int64_t sm_layer, int64_t sm_pitch, int64_t xfade) {
    gg_core *c = calloc(1, sizeof(gg_core));
    if (!c) return NULL;
    c->mon = calloc((size_t)(mon_frames * channels), sizeof(float));
    if (!c->mon) { free(c); return NULL; }
    c->mon_cap = mon_frames;
    c->sr = sr; c->channels = channels; c->block = block;
    sm_init(&c->vg, voices_gain, sm_voices); sm_init(&c->lg, layer_gain, sm_layer); sm_init(&c->pitch, pitch, sm_pitch);
    sm_init(&c->mg, gain, (int64_t)(0.05 * sr));
    c->ceiling = ceiling; c->dc_r = exp(-2 * GG_PI * 10.0 / sr); c->lim_gain = 1;
    c->rel_per_sample = exp(-1.0 / (0.25 * sr)); c->attack = (int64_t)(0.001 * sr) > 1 ? (int64_t)(0.001 * sr) : 1;
    c->meter_decay = pow(0.1, 1.0 / (1.5 * sr)); c->xfade = xfade > 1 ? xfade : 1;
    return c;
}
void gg_free(gg_core *c) { if (c) { free(c->mon); free(c); } }

static int push(gg_core *c, op_t *o) {
    uint64_t w = c->q_w, r = __atomic_load_n(&c->q_r, __ATOMIC_ACQUIRE);
    if (w - r >= GG_OPQ) { c->dropped_ops++; return 0; }
    c->q[w % GG_OPQ] = *o;
    __atomic_store_n(&c->q_w, w + 1, __ATOMIC_RELEASE);
    return 1;
}
int gg_start_voice(gg_core *c, int64_t at, int64_t handle, const float *clip, int64_t len, double ratio, double gain,
                   int32_t attack, int32_t release, int32_t note, int32_t channel, int32_t poly, int32_t steal) {
    op_t o = {0};
    o.kind = OP_START; o.time = at; o.ref.clip = clip; o.ref.len = len; o.ref.handle = handle; o.ref.owns = 1;
    o.x = ratio; o.y = gain; o.attack = attack; o.release = release; o.note = note; o.channel = channel; o.poly = poly; o.steal = steal;
    return push(c, &o);
}
int gg_release(gg_core *c, int64_t at, int32_t note, int32_t channel) {
    op_t o = {0}; o.kind = OP_RELEASE; o.time = at; o.note = note; o.channel = channel; return push(c, &o);
}
int gg_express(gg_core *c, int64_t at, int32_t channel, double ratio, double gain) {
    op_t o = {0}; o.kind = OP_EXPRESS; o.time = at; o.channel = channel; o.x = ratio; o.y = gain; return push(c, &o);
}
int gg_set(gg_core *c, int64_t at, int32_t what, double value) {
    op_t o = {0}; o.kind = OP_SET; o.time = at; o.what = what; o.x = value; return push(c, &o);
}
int gg_layer(gg_core *c, int32_t next, int64_t at, int64_t handle, const float *clip, int64_t len, int64_t serial) {
    op_t o = {0};
    o.kind = next ? OP_NEXT : OP_WANT; o.time = at; o.serial = serial;
    o.ref.clip = clip; o.ref.len = len; o.ref.handle = handle; o.ref.owns = 1;
    return push(c, &o);
}
int gg_layer_stop(gg_core *c, int64_t at) { op_t o = {0}; o.kind = OP_STOP; o.time = at; return push(c, &o); }

void gg_render(gg_core *c, float *out, int64_t n) {
    for (int64_t done = 0; done < n;) {
        int64_t m = n - done > GG_MAXBLOCK ? GG_MAXBLOCK : n - done;
        render_block(c, out + done * c->channels, m);
        done += m;
    }
}
/* up to n_blocks blocks of `block` frames, one after another (offline: Python had nothing to do between them),
 * stopping after a block in which the layer moved to another clip (Python follows the layer). Returns how many. */
int64_t gg_render_blocks(gg_core *c, float *out, int64_t n_blocks, int64_t block) {
    int64_t serial = c->layer_serial, k = 0;
    while (k < n_blocks) {
        gg_render(c, out + k * block * c->channels, block);
        k++;
        if (c->layer_serial != serial) break;
    }
    return k;
}
int64_t gg_collect(gg_core *c, int64_t *out, int64_t max) {
    uint64_t r = c->ret_r, w = __atomic_load_n(&c->ret_w, __ATOMIC_ACQUIRE);
    int64_t k = 0;
    while (r != w && k < max) out[k++] = c->ret[r++ % GG_RETQ];
    __atomic_store_n(&c->ret_r, r, __ATOMIC_RELEASE);
    return k;
}
void gg_monitor(gg_core *c, int32_t on) { c->mon_on = on; }
int64_t gg_monitor_read(gg_core *c, float *out, int64_t max_frames) {
    uint64_t r = c->mon_r, w = __atomic_load_n(&c->mon_w, __ATOMIC_ACQUIRE);
    int64_t n = (int64_t)(w - r) < max_frames ? (int64_t)(w - r) : max_frames, ch = c->channels;
    for (int64_t k = 0; k < n; k++) memcpy(&out[k * ch], &c->mon[((r + (uint64_t)k) % (uint64_t)c->mon_cap) * (uint64_t)ch], sizeof(float) * (size_t)ch);
    __atomic_store_n(&c->mon_r, r + (uint64_t)n, __ATOMIC_RELEASE);
    return n;
}
int64_t gg_now(gg_core *c) { return __atomic_load_n(&c->t, __ATOMIC_ACQUIRE); }
int64_t gg_layer_serial(gg_core *c) { return c->layer_serial; }

/* the counters, in the order instrument/ccore.py names them (GG_STATE_N of them: checked at load) */
#define GG_STATE_N 27
int32_t gg_state_len(void) { return GG_STATE_N; }
void gg_state(gg_core *c, double *s) {
    double v[] = {(double)c->t, c->nv, c->cur.clip != NULL, c->fade_n > 0, (double)c->loops, (double)c->crossfades,
                  (double)c->layer_serial, (double)c->stolen, (double)c->nonfinite, (double)c->limited_blocks, (double)c->late_ops,
                  (double)c->deferred_ops, c->meter, (double)c->dropped_ops, (double)c->ret_lost, (double)c->mon_lost,
                  (double)c->callbacks, (double)c->frames, (double)c->underflows, (double)c->slow_callbacks, c->max_callback_ms,
                  c->max_gap_ms, (double)c->recent_handle, (double)c->recent_t, (double)c->voice_ids,
                  (double)c->stalled_callbacks, c->busy_ms};
    _Static_assert(sizeof v / sizeof v[0] == GG_STATE_N, "GG_STATE_N");
    memcpy(s, v, sizeof v);
}
/* each voice: id, channel, note, gain, bend, expression gain, position, releasing, started_at, level */
int32_t gg_voices(gg_core *c, double *out, int32_t max) {
    int32_t n = c->nv < max ? c->nv : max;
    for (int32_t i = 0; i < n; i++) {
        voice_t *v = &c->v[i];
        double row[] = {(double)v->id, v->channel, v->note, v->gain, v->bend, v->expr_gain, v->pos, v->releasing, (double)v->started_at, v->level};
        memcpy(&out[i * 10], row, sizeof row);
    }
    return n;
}
/* (first engine sample, DAC time) of callback k */
int gg_stamp(gg_core *c, int64_t k, double *out) {
    if (k < 0 || k >= c->callbacks || c->callbacks - k > GG_STAMPS) return 0;
    out[0] = c->stamps[k % GG_STAMPS][0]; out[1] = c->stamps[k % GG_STAMPS][1];
    return 1;
}

static double clock_ms(clockid_t id) { struct timespec ts; clock_gettime(id, &ts); return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6; }

/* PortAudio's stream callback (PaStreamCallback): renders straight into the device's buffer. A callback
 * that took longer than its period is late: the engine's underrun ("slow_callbacks") when it worked that
 * long (its thread's CPU time), the host's when it did not (it was preempted: "stalled_callbacks"). The device
 * reporting an underflow after callbacks that were on time is the host's too ("underflows"). */
int gg_callback(const void *in, void *out, unsigned long frames, const gg_timeinfo *ti, unsigned long flags, void *user) {
    (void)in;
    gg_core *c = user;
    double start = clock_ms(CLOCK_MONOTONIC), cpu = clock_ms(CLOCK_THREAD_CPUTIME_ID);
    if (c->callbacks && start - c->last_cb_start > c->max_gap_ms) c->max_gap_ms = start - c->last_cb_start;
    c->last_cb_start = start;
    int64_t k = c->callbacks % GG_STAMPS;
    c->stamps[k][0] = (double)c->t;
    c->stamps[k][1] = ti ? ti->outputBufferDacTime : 0;
    if (flags & 0x4) c->underflows++;  /* paOutputUnderflow */
    gg_render(c, out, (int64_t)frames);
    double took = clock_ms(CLOCK_MONOTONIC) - start, worked = clock_ms(CLOCK_THREAD_CPUTIME_ID) - cpu, period = 1e3 * (double)frames / c->sr;
    if (took > c->max_callback_ms) c->max_callback_ms = took;
    c->busy_ms += took;
    if (took > period) { if (worked > period) c->slow_callbacks++; else c->stalled_callbacks++; }
    c->frames += (int64_t)frames;
    __atomic_store_n(&c->callbacks, c->callbacks + 1, __ATOMIC_RELEASE);
    return 0;
}
