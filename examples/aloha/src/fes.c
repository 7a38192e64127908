#include "fes.h"

#include <stdlib.h>

static inline int ev_less(const sim_event *a, const sim_event *b)
{
    if (a->t != b->t)
        return a->t < b->t;
    if (a->prio != b->prio)
        return a->prio < b->prio;
    return a->seq < b->seq;
}

static inline void place(fes_t *f, int i, sim_event *e)
{
    f->heap[i] = e;
    e->heap_index = i;
}

static void sift_up(fes_t *f, int i)
{
    sim_event *e = f->heap[i];
    while (i > 0) {
        int p = (i - 1) / 2;
        if (!ev_less(e, f->heap[p]))
            break;
        place(f, i, f->heap[p]);
        i = p;
    }
    place(f, i, e);
}

static void sift_down(fes_t *f, int i)
{
    sim_event *e = f->heap[i];
    for (;;) {
        int c = 2 * i + 1;
        if (c >= f->n)
            break;
        if (c + 1 < f->n && ev_less(f->heap[c + 1], f->heap[c]))
            c++;
        if (!ev_less(f->heap[c], e))
            break;
        place(f, i, f->heap[c]);
        i = c;
    }
    place(f, i, e);
}

void fes_init(fes_t *f)
{
    f->heap = NULL;
    f->n = f->cap = 0;
    f->next_seq = 0;
}

void fes_free(fes_t *f)
{
    int i;
    for (i = 0; i < f->n; i++)
        f->heap[i]->heap_index = -1;
    free(f->heap);
    fes_init(f);
}

void fes_insert(fes_t *f, sim_event *e)
{
    if (f->n == f->cap) {
        f->cap = f->cap ? 2 * f->cap : 64;
        f->heap = xrealloc(f->heap, (size_t)f->cap * sizeof *f->heap);
    }
    e->seq = f->next_seq++;
    place(f, f->n, e);
    f->n++;
    sift_up(f, f->n - 1);
}

sim_event *fes_peek(const fes_t *f)
{
    return f->n ? f->heap[0] : NULL;
}

sim_event *fes_pop(fes_t *f)
{
    sim_event *top;
    if (!f->n)
        return NULL;
    top = f->heap[0];
    f->n--;
    if (f->n) {
        place(f, 0, f->heap[f->n]);
        sift_down(f, 0);
    }
    top->heap_index = -1;
    return top;
}

void fes_remove(fes_t *f, sim_event *e)
{
    int i = e->heap_index;
    if (i < 0)
        return;
    f->n--;
    e->heap_index = -1;
    if (i == f->n)
        return;
    place(f, i, f->heap[f->n]);
    if (i > 0 && ev_less(f->heap[i], f->heap[(i - 1) / 2]))
        sift_up(f, i);
    else
        sift_down(f, i);
}
