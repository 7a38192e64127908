/*
 * results.h -- OMNeT++ result files, format version 3:
 *   .sca  scalars, statistics (fields + histogram bins) and parameters;
 *   .vec  vectors ("vector ID MODULE NAME ETV" + "ID<TAB>event<TAB>time<TAB>value"),
 *         written in blocks;
 *   .vci  the vector index (one line per block), like OMNeT++ writes it.
 * Every file starts with the run header: "version 3", "run <runID>",
 * "attr ..." run attributes, "itervar ..." and "config ..." lines.
 */
#ifndef ALOHA_RESULTS_H
#define ALOHA_RESULTS_H

#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "util.h"

/* ---- accumulators ---- */

typedef struct {
    long count;
    double sum, sqrsum, min, max;
} stat_t;

void stat_init(stat_t *s);
void stat_add(stat_t *s, double v);
double stat_mean(const stat_t *s);
double stat_stddev(const stat_t *s);

/* Fixed-width histogram starting at 0, growing as needed. */
typedef struct {
    stat_t st;
    double width;
    long underflow;
    long *bins;
    int nbins;
} histogram_t;

void hist_init(histogram_t *h, double width);
void hist_add(histogram_t *h, double v);
void hist_free(histogram_t *h);

/* ---- run header ---- */

/* Writes the header lines shared by .sca, .vec and .vci. */
void results_write_header(FILE *f, const run_ctx *r, const char *network);

/* ---- scalar file ---- */

typedef struct {
    FILE *f;
    char *path, *tmppath;
} sca_writer;

/* Opens a temporary file next to `path`; sca_commit renames it into place,
 * so a failed run leaves no .sca behind. */
int sca_open(sca_writer *w, const char *path, const run_ctx *r, const char *network, char **err);
/* attrs: NULL-terminated list of name, value pairs (may be NULL) */
void sca_scalar(sca_writer *w, const char *module, const char *name, double value,
                const char *const *attrs);
void sca_par(sca_writer *w, const char *module, const char *name, const char *value,
             const char *unit);
void sca_histogram(sca_writer *w, const char *module, const char *name, const histogram_t *h,
                   const char *const *attrs);
int sca_commit(sca_writer *w, char **err);
void sca_abort(sca_writer *w);

/* ---- vector file + index ---- */

typedef struct {
    char *module, *name;
    strbuf buf;               /* pending block */
    long count;
    long long first_ev, last_ev;
    simtime_t first_t, last_t;
    double min, max, sum, sqrsum;
    strbuf decl;              /* declaration lines, repeated in the .vci */
} vec_t;

typedef struct {
    FILE *f;
    char *path, *vcipath;
    vec_t *v;
    int n, cap;
    uint64_t written;         /* bytes in the file */
    uint64_t pending;         /* bytes buffered */
    strbuf index;             /* .vci block lines */
    strbuf header;            /* run header text (for the .vci) */
} vec_writer;

int vec_open(vec_writer *w, const char *path, const run_ctx *r, const char *network, char **err);
/* Declares a vector; attrs as for sca_scalar. Returns its id. */
int vec_declare(vec_writer *w, const char *module, const char *name, const char *const *attrs);
void vec_record(vec_writer *w, int id, long long event, simtime_t t, double value);
static inline uint64_t vec_bytes(const vec_writer *w) { return w->written + w->pending; }
int vec_close(vec_writer *w, char **err);  /* flushes, writes the .vci */
void vec_abort(vec_writer *w);             /* closes and deletes both files */

#endif
