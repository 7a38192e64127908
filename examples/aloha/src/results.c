#include "results.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define VEC_BLOCK_BYTES (64 * 1024)

/* ---- accumulators ---- */

void stat_init(stat_t *s)
{
    s->count = 0;
    s->sum = s->sqrsum = 0;
    s->min = INFINITY;
    s->max = -INFINITY;
}

void stat_add(stat_t *s, double v)
{
    s->count++;
    s->sum += v;
    s->sqrsum += v * v;
    if (v < s->min)
        s->min = v;
    if (v > s->max)
        s->max = v;
}

double stat_mean(const stat_t *s)
{
    return s->count ? s->sum / (double)s->count : NAN;
}

double stat_stddev(const stat_t *s)
{
    double n = (double)s->count, var;
    if (s->count < 2)
        return NAN;
    var = (s->sqrsum - s->sum * s->sum / n) / (n - 1);
    return var < 0 ? 0 : sqrt(var);
}

void hist_init(histogram_t *h, double width)
{
    stat_init(&h->st);
    h->width = width;
    h->underflow = 0;
    h->bins = NULL;
    h->nbins = 0;
}

void hist_add(histogram_t *h, double v)
{
    long i;
    stat_add(&h->st, v);
    if (v < 0) {
        h->underflow++;
        return;
    }
    i = (long)floor(v / h->width);
    if (i > 10000000)
        i = 10000000;
    if (i >= h->nbins) {
        int n = h->nbins ? h->nbins : 16;
        while (n <= i)
            n *= 2;
        h->bins = xrealloc(h->bins, (size_t)n * sizeof *h->bins);
        memset(h->bins + h->nbins, 0, (size_t)(n - h->nbins) * sizeof *h->bins);
        h->nbins = n;
    }
    h->bins[i]++;
}

void hist_free(histogram_t *h)
{
    free(h->bins);
    h->bins = NULL;
    h->nbins = 0;
}

/* ---- formatting ---- */

static void fmt_double(char *buf, size_t n, double v)
{
    if (isnan(v))
        snprintf(buf, n, "nan");
    else if (isinf(v))
        snprintf(buf, n, v > 0 ? "inf" : "-inf");
    else
        snprintf(buf, n, "%.14g", v);
}

static void write_quoted(FILE *f, const char *s)
{
    strbuf b;
    sb_init(&b);
    sb_append_quoted_if_needed(&b, s);
    fputs(b.s, f);
    sb_free(&b);
}

static void write_attrs(FILE *f, const char *const *attrs)
{
    if (!attrs)
        return;
    for (; attrs[0] && attrs[1]; attrs += 2) {
        fprintf(f, "attr %s ", attrs[0]);
        write_quoted(f, attrs[1]);
        fputc('\n', f);
    }
}

/* ---- run header ---- */

static int cmp_var_names(const void *a, const void *b)
{
    const itervar_t *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

static void write_config_line(FILE *f, const run_ctx *r, const char *key, const char *raw)
{
    char *err = NULL, *v = run_subst(r, raw, &err);
    if (!v) {
        free(err);
        v = xstrdup(raw);
    }
    if (!strchr(key, '.') && !strchr(key, '*')) {
        /* configuration option: drop the string literal quotes */
        char *u = str_unquote(v);
        free(v);
        v = u;
    }
    fprintf(f, "config %s ", key);
    write_quoted(f, v);
    fputc('\n', f);
    free(v);
}

void results_write_header(FILE *f, const run_ctx *r, const char *network)
{
    const config_t *cfg = r->cfg;
    const itervar_t **sorted;
    char *err = NULL, *experiment, *measurement, *seedset;
    int i, j;

    experiment = run_option_str(r, "experiment-label", &err);
    free(err);
    measurement = run_option_str(r, "measurement-label", &err);
    free(err);
    seedset = run_option(r, "seed-set", &err);
    free(err);

    fprintf(f, "version 3\n");
    fprintf(f, "run %s\n", r->runid);
    fprintf(f, "attr configname %s\n", cfg->name);
    fprintf(f, "attr datetime %s\n", r->datetime);
    fprintf(f, "attr datetimef %s\n", r->datetimef);
    fprintf(f, "attr experiment ");
    write_quoted(f, experiment ? experiment : cfg->name);
    fprintf(f, "\nattr inifile ");
    write_quoted(f, cfg->ini->path);
    fprintf(f, "\nattr iterationvars ");
    write_quoted(f, r->iterationvars);
    fprintf(f, "\nattr iterationvarsd ");
    write_quoted(f, r->iterationvarsd);
    fprintf(f, "\nattr iterationvarsf ");
    write_quoted(f, r->iterationvarsf);
    fprintf(f, "\nattr measurement ");
    write_quoted(f, measurement ? measurement : r->iterationvars);
    fprintf(f, "\nattr network ");
    write_quoted(f, network);
    fprintf(f, "\nattr processid %ld\n", r->processid);
    fprintf(f, "attr repetition %d\n", r->repetition);
    fprintf(f, "attr replication #%d\n", r->repetition);
    fprintf(f, "attr resultdir ");
    write_quoted(f, r->resultdir);
    fprintf(f, "\nattr runnumber %d\n", r->runnumber);
    if (seedset)
        fprintf(f, "attr seedset %s\n", seedset);
    else
        fprintf(f, "attr seedset %d\n", r->repetition);

    sorted = xmalloc((size_t)(cfg->nvars + 1) * sizeof *sorted);
    for (i = 0; i < cfg->nvars; i++)
        sorted[i] = &cfg->vars[i];
    qsort(sorted, (size_t)cfg->nvars, sizeof *sorted, cmp_var_names);
    for (i = 0; i < cfg->nvars; i++) {
        int k = (int)(sorted[i] - cfg->vars);
        fprintf(f, "itervar %s ", sorted[i]->name);
        write_quoted(f, run_var_value(r, k));
        fputc('\n', f);
    }
    free(sorted);

    for (i = 0; i < cfg->ncmdline; i++)
        write_config_line(f, r, cfg->cmdline[i].key, cfg->cmdline[i].value);
    for (i = 0; i < cfg->nchain; i++)
        for (j = 0; j < cfg->chain[i]->n; j++)
            write_config_line(f, r, cfg->chain[i]->entries[j].key,
                              cfg->chain[i]->entries[j].value);
    fputc('\n', f);
    free(experiment);
    free(measurement);
    free(seedset);
}

/* ---- scalar file ---- */

int sca_open(sca_writer *w, const char *path, const run_ctx *r, const char *network, char **err)
{
    char *dir = path_dirname(path);
    w->path = xstrdup(path);
    w->tmppath = xasprintf("%s.tmp%ld", path, (long)getpid());
    w->f = NULL;
    if (mkdir_p(dir) != 0) {
        *err = xasprintf("Cannot create directory '%s': %s", dir, strerror(errno));
        free(dir);
        return -1;
    }
    free(dir);
    w->f = fopen(w->tmppath, "w");
    if (!w->f) {
        *err = xasprintf("Cannot open output scalar file '%s': %s", w->tmppath, strerror(errno));
        return -1;
    }
    results_write_header(w->f, r, network);
    return 0;
}

void sca_scalar(sca_writer *w, const char *module, const char *name, double value,
                const char *const *attrs)
{
    char buf[64];
    fmt_double(buf, sizeof buf, value);
    fprintf(w->f, "scalar %s ", module);
    write_quoted(w->f, name);
    fprintf(w->f, " %s\n", buf);
    write_attrs(w->f, attrs);
}

void sca_par(sca_writer *w, const char *module, const char *name, const char *value,
             const char *unit)
{
    fprintf(w->f, "par %s %s ", module, name);
    write_quoted(w->f, value);
    fputc('\n', w->f);
    if (unit)
        fprintf(w->f, "attr unit %s\n", unit);
}

void sca_histogram(sca_writer *w, const char *module, const char *name, const histogram_t *h,
                   const char *const *attrs)
{
    char a[64], b[64];
    int i, last = -1;
    fprintf(w->f, "statistic %s ", module);
    write_quoted(w->f, name);
    fputc('\n', w->f);
    fprintf(w->f, "field count %ld\n", h->st.count);
    fmt_double(a, sizeof a, stat_mean(&h->st));
    fprintf(w->f, "field mean %s\n", a);
    fmt_double(a, sizeof a, stat_stddev(&h->st));
    fprintf(w->f, "field stddev %s\n", a);
    fmt_double(a, sizeof a, h->st.count ? h->st.min : NAN);
    fprintf(w->f, "field min %s\n", a);
    fmt_double(a, sizeof a, h->st.count ? h->st.max : NAN);
    fprintf(w->f, "field max %s\n", a);
    fmt_double(a, sizeof a, h->st.sum);
    fprintf(w->f, "field sum %s\n", a);
    fmt_double(a, sizeof a, h->st.sqrsum);
    fprintf(w->f, "field sqrsum %s\n", a);
    write_attrs(w->f, attrs);
    for (i = 0; i < h->nbins; i++)
        if (h->bins[i])
            last = i;
    fprintf(w->f, "bin\t-inf\t%ld\n", h->underflow);
    for (i = 0; i <= last + 1; i++) {
        fmt_double(b, sizeof b, (double)i * h->width);
        fprintf(w->f, "bin\t%s\t%ld\n", b, i <= last ? h->bins[i] : 0L);
    }
}

int sca_commit(sca_writer *w, char **err)
{
    int rc = 0;
    if (w->f) {
        if (fflush(w->f) != 0 || ferror(w->f))
            rc = -1;
        if (fclose(w->f) != 0)
            rc = -1;
        w->f = NULL;
    }
    if (rc == 0 && rename(w->tmppath, w->path) != 0)
        rc = -1;
    if (rc != 0) {
        *err = xasprintf("Cannot write output scalar file '%s': %s", w->path, strerror(errno));
        unlink(w->tmppath);
    }
    free(w->path);
    free(w->tmppath);
    w->path = w->tmppath = NULL;
    return rc;
}

void sca_abort(sca_writer *w)
{
    if (w->f) {
        fclose(w->f);
        w->f = NULL;
    }
    if (w->tmppath)
        unlink(w->tmppath);
    free(w->path);
    free(w->tmppath);
    w->path = w->tmppath = NULL;
}

/* ---- vectors ---- */

int vec_open(vec_writer *w, const char *path, const run_ctx *r, const char *network, char **err)
{
    char *dir = path_dirname(path);
    FILE *mem;
    char *membuf = NULL;
    size_t memlen = 0;

    memset(w, 0, sizeof *w);
    sb_init(&w->index);
    sb_init(&w->header);
    w->path = xstrdup(path);
    w->vcipath = str_ends_with(path, ".vec") ? xasprintf("%.*s.vci", (int)(strlen(path) - 4), path)
                                             : xasprintf("%s.vci", path);
    if (mkdir_p(dir) != 0) {
        *err = xasprintf("Cannot create directory '%s': %s", dir, strerror(errno));
        free(dir);
        return -1;
    }
    free(dir);
    unlink(w->vcipath);
    w->f = fopen(path, "w");
    if (!w->f) {
        *err = xasprintf("Cannot open output vector file '%s': %s", path, strerror(errno));
        return -1;
    }
    mem = open_memstream(&membuf, &memlen);
    if (!mem) {
        *err = xstrdup("open_memstream failed");
        return -1;
    }
    results_write_header(mem, r, network);
    fclose(mem);
    sb_appendn(&w->header, membuf, memlen);
    free(membuf);
    fwrite(w->header.s, 1, w->header.len, w->f);
    w->written = w->header.len;
    return 0;
}

int vec_declare(vec_writer *w, const char *module, const char *name, const char *const *attrs)
{
    vec_t *v;
    int id = w->n;
    if (w->n == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 16;
        w->v = xrealloc(w->v, (size_t)w->cap * sizeof *w->v);
    }
    v = &w->v[w->n++];
    memset(v, 0, sizeof *v);
    v->module = xstrdup(module);
    v->name = xstrdup(name);
    sb_init(&v->buf);
    sb_init(&v->decl);
    sb_printf(&v->decl, "vector %d %s ", id, module);
    sb_append_quoted_if_needed(&v->decl, name);
    sb_append(&v->decl, " ETV\n");
    if (attrs) {
        for (; attrs[0] && attrs[1]; attrs += 2) {
            sb_printf(&v->decl, "attr %s ", attrs[0]);
            sb_append_quoted_if_needed(&v->decl, attrs[1]);
            sb_putc(&v->decl, '\n');
        }
    }
    fwrite(v->decl.s, 1, v->decl.len, w->f);
    w->written += v->decl.len;
    return id;
}

static void vec_flush_block(vec_writer *w, int id)
{
    vec_t *v = &w->v[id];
    char ft[32], lt[32], mn[64], mx[64], sm[64], sq[64];
    if (!v->count)
        return;
    fmt_double(mn, sizeof mn, v->min);
    fmt_double(mx, sizeof mx, v->max);
    fmt_double(sm, sizeof sm, v->sum);
    fmt_double(sq, sizeof sq, v->sqrsum);
    sb_printf(&w->index, "%d\t%llu %zu %lld %lld %s %s %ld %s %s %s %s\n", id,
              (unsigned long long)w->written, v->buf.len, v->first_ev, v->last_ev,
              simtime_str(v->first_t, ft), simtime_str(v->last_t, lt), v->count, mn, mx, sm, sq);
    fwrite(v->buf.s, 1, v->buf.len, w->f);
    w->written += v->buf.len;
    w->pending -= v->buf.len;
    sb_clear(&v->buf);
    v->count = 0;
}

void vec_record(vec_writer *w, int id, long long event, simtime_t t, double value)
{
    vec_t *v = &w->v[id];
    char line[160], vb[64];
    int n;
    size_t before = v->buf.len;
    if (v->count == 0) {
        v->first_ev = event;
        v->first_t = t;
        v->min = v->max = value;
        v->sum = v->sqrsum = 0;
    }
    v->last_ev = event;
    v->last_t = t;
    v->count++;
    if (value < v->min)
        v->min = value;
    if (value > v->max)
        v->max = value;
    v->sum += value;
    v->sqrsum += value * value;
    /* hand-formatted: vectors can have tens of millions of lines */
    n = fmt_i64(line, id);
    line[n++] = '\t';
    n += fmt_i64(line + n, event);
    line[n++] = '\t';
    n += simtime_fmt(line + n, t);
    line[n++] = '\t';
    if (value == floor(value) && fabs(value) < 1e15) {
        n += fmt_i64(line + n, (int64_t)value);
    } else {
        fmt_double(vb, sizeof vb, value);
        n += snprintf(line + n, sizeof line - (size_t)n, "%s", vb);
    }
    line[n++] = '\n';
    sb_appendn(&v->buf, line, (size_t)n);
    w->pending += v->buf.len - before;
    if (v->buf.len >= VEC_BLOCK_BYTES)
        vec_flush_block(w, id);
}

static void vec_free(vec_writer *w)
{
    int i;
    for (i = 0; i < w->n; i++) {
        free(w->v[i].module);
        free(w->v[i].name);
        sb_free(&w->v[i].buf);
        sb_free(&w->v[i].decl);
    }
    free(w->v);
    w->v = NULL;
    w->n = w->cap = 0;
    sb_free(&w->index);
    sb_free(&w->header);
    free(w->path);
    free(w->vcipath);
    w->path = w->vcipath = NULL;
}

int vec_close(vec_writer *w, char **err)
{
    struct stat st;
    FILE *x;
    int i, rc = 0;
    char first[80];

    if (!w->f)
        return 0;
    for (i = 0; i < w->n; i++)
        vec_flush_block(w, i);
    if (fflush(w->f) != 0 || ferror(w->f))
        rc = -1;
    if (fclose(w->f) != 0)
        rc = -1;
    w->f = NULL;
    if (rc != 0) {
        *err = xasprintf("Cannot write output vector file '%s': %s", w->path, strerror(errno));
        vec_free(w);
        return -1;
    }
    if (stat(w->path, &st) != 0) {
        *err = xasprintf("Cannot stat output vector file '%s'", w->path);
        vec_free(w);
        return -1;
    }
    x = fopen(w->vcipath, "w");
    if (!x) {
        *err = xasprintf("Cannot open vector index file '%s': %s", w->vcipath, strerror(errno));
        vec_free(w);
        return -1;
    }
    snprintf(first, sizeof first, "file %lld %lld", (long long)st.st_size, (long long)st.st_mtime);
    fprintf(x, "%-64s\n", first);
    fwrite(w->header.s, 1, w->header.len, x);
    for (i = 0; i < w->n; i++)
        fwrite(w->v[i].decl.s, 1, w->v[i].decl.len, x);
    fwrite(w->index.s ? w->index.s : "", 1, w->index.len, x);
    if (fclose(x) != 0) {
        *err = xasprintf("Cannot write vector index file '%s'", w->vcipath);
        rc = -1;
    }
    vec_free(w);
    return rc;
}

void vec_abort(vec_writer *w)
{
    if (w->f) {
        fclose(w->f);
        w->f = NULL;
    }
    if (w->path)
        unlink(w->path);
    if (w->vcipath)
        unlink(w->vcipath);
    vec_free(w);
}
