/*
 * fes.h -- the future event set: a binary min-heap of event pointers,
 * ordered by (time, priority, insertion order), so that events at the same
 * time are delivered deterministically in FIFO order. Events remember their
 * heap position, which makes cancellation O(log n).
 */
#ifndef ALOHA_FES_H
#define ALOHA_FES_H

#include <stdint.h>

#include "util.h"

typedef struct sim_event {
    simtime_t t;        /* arrival time */
    int prio;           /* smaller is earlier among equal times */
    uint64_t seq;       /* insertion order, set by fes_insert */
    int heap_index;     /* position in the heap, -1 when not scheduled */
    int kind;           /* model-defined */
    int module;         /* model-defined target */
    void *data;         /* model-defined payload */
} sim_event;

typedef struct {
    sim_event **heap;
    int n, cap;
    uint64_t next_seq;
} fes_t;

void fes_init(fes_t *f);
void fes_free(fes_t *f);           /* frees the heap array, not the events */
void fes_insert(fes_t *f, sim_event *e);
sim_event *fes_peek(const fes_t *f);
sim_event *fes_pop(fes_t *f);
void fes_remove(fes_t *f, sim_event *e);   /* no-op if not scheduled */
static inline int fes_size(const fes_t *f) { return f->n; }
static inline int fes_contains(const sim_event *e) { return e->heap_index >= 0; }

#endif
