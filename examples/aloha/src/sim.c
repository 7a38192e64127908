#include "sim.h"

#include <stdlib.h>
#include <string.h>

void sim_init(sim_t *s)
{
    memset(s, 0, sizeof *s);
    fes_init(&s->fes);
    s->fp = 2166136261u;
    s->phase = PH_SETUP;
}

char *sim_keep(sim_t *s, char *p)
{
    s->kept = xrealloc(s->kept, (size_t)(s->nkept + 1) * sizeof *s->kept);
    s->kept[s->nkept++] = p;
    return p;
}

void sim_free(sim_t *s)
{
    int i;
    for (i = 0; i < s->nkept; i++)
        free(s->kept[i]);
    free(s->kept);
    s->kept = NULL;
    s->nkept = 0;
    fes_free(&s->fes);
    free(s->error);
    s->error = NULL;
}

void sim_schedule(sim_t *s, sim_event *e, simtime_t t)
{
    if (fes_contains(e))
        sim_error(s, "scheduleAt(): message is already scheduled");
    if (t < s->now)
        sim_error(s, "scheduleAt(): cannot schedule message to the past");
    e->t = t;
    fes_insert(&s->fes, e);
}

void sim_cancel(sim_t *s, sim_event *e)
{
    fes_remove(&s->fes, e);
}

void sim_end_simulation(sim_t *s)
{
    s->end_requested = 1;
}

void sim_enter_module(sim_t *s, const char *type, const char *path, int id)
{
    s->ctx_type = type;
    s->ctx_path = path;
    s->ctx_id = id;
}

void sim_error(sim_t *s, const char *fmt, ...)
{
    strbuf b;
    va_list ap;
    char tb[32];
    sb_init(&b);
    va_start(ap, fmt);
    sb_vprintf(&b, fmt, ap);
    va_end(ap);
    switch (s->phase) {
    case PH_SETUP:
        sb_append(&b, " -- during network setup");
        break;
    case PH_INIT:
        if (s->ctx_path)
            sb_printf(&b, " -- in module (%s) %s (id=%d), during network initialization",
                      s->ctx_type, s->ctx_path, s->ctx_id);
        else
            sb_append(&b, " -- during network initialization");
        break;
    case PH_RUN:
        if (s->ctx_path)
            sb_printf(&b, " -- in module (%s) %s (id=%d), at t=%ss, event #%lld", s->ctx_type,
                      s->ctx_path, s->ctx_id, simtime_str(s->now, tb), s->event_num);
        else
            sb_printf(&b, " -- at t=%ss, event #%lld", simtime_str(s->now, tb), s->event_num);
        break;
    case PH_FINISH:
        if (s->ctx_path)
            sb_printf(&b, " -- in module (%s) %s (id=%d), during finalization", s->ctx_type,
                      s->ctx_path, s->ctx_id);
        else
            sb_append(&b, " -- during finalization");
        break;
    }
    free(s->error);
    s->error = sb_take(&b);
    if (!s->on_error) {
        /* no run to unwind: report and stop */
        fatal("%s", s->error);
    }
    longjmp(*s->on_error, 1);
}

static inline void fnv(uint32_t *h, const void *data, size_t n)
{
    const unsigned char *p = data;
    size_t i;
    for (i = 0; i < n; i++) {
        *h ^= p[i];
        *h *= 16777619u;
    }
}

void sim_fingerprint_event(sim_t *s, const sim_event *e)
{
    const char *p;
    for (p = s->fp_ingredients; *p; p++) {
        switch (*p) {
        case 't': fnv(&s->fp, &e->t, sizeof e->t); break;
        case 'e': fnv(&s->fp, &s->event_num, sizeof s->event_num); break;
        case 'p': /* module identity: full path and id are equivalent here */
        case 'i': fnv(&s->fp, &e->module, sizeof e->module); break;
        case 'k':
        case 'c': fnv(&s->fp, &e->kind, sizeof e->kind); break;
        default: break; /* other OMNeT++ ingredients are accepted but unused */
        }
    }
}

void sim_fingerprint_str(const sim_t *s, char buf[16])
{
    snprintf(buf, 16, "%04x-%04x", (unsigned)(s->fp >> 16), (unsigned)(s->fp & 0xffff));
}
