#include "cmdenv.h"

#include <errno.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model.h"
#include "results.h"
#include "sim.h"
#include "util.h"

#define DEFAULT_SCA_FILE "${resultdir}/${configname}-${iterationvarsf}#${repetition}.sca"
#define DEFAULT_VEC_FILE "${resultdir}/${configname}-${iterationvarsf}#${repetition}.vec"
#define DEFAULT_OUT_FILE "${resultdir}/${configname}-${iterationvarsf}#${repetition}.out"

/* OMNeT++ keeps the network of a failed run set up; every later run in the
 * same process then fails while setting up its own. We imitate that. */
static int network_left_over = 0;

enum term { T_SIMTIME, T_CPU, T_REAL, T_ENDSIM, T_NOMORE };

typedef struct {
    sim_t sim;
    run_ctx r;
    model_t *model;
    sca_writer sca;
    int sca_started;
    FILE *out;
    char *out_path;
    char *sca_path, *vec_path;
    char *network;
    char *fingerprint;        /* expected, as given */
    simtime_t limit;
    double cpu_limit, real_limit, status_freq;
    int perf_display;
    int index, total;
    double wall0, last_wall;
    long long last_events;
    simtime_t last_t;
} runstate;

void cmdenv_banner(void)
{
    printf("OMNeT++-style Discrete Event Simulation  (simswarm aloha example -- not OMNeT++)\n");
    printf("Version: 6.1-compatible, build: %s, edition: simswarm example\n",
#ifdef NDEBUG
           "release"
#else
           "debug"
#endif
    );
    printf("See README.md for what this program imitates\n\n");
    printf("Setting up Cmdenv...\n");
}

static void report_error(const char *msg)
{
    fflush(stdout);
    fprintf(stderr, "\n<!> Error: %s\n", msg);
    fflush(stderr);
}

/* ---- option helpers (errors go through sim_error: the run fails) ---- */

static char *opt_str(runstate *rs, const char *key, const char *def)
{
    char *err = NULL, *v = run_option_str(&rs->r, key, &err);
    if (err) {
        char *copy = sim_keep(&rs->sim, xasprintf("%s (option %s)", err, key));
        free(err);
        sim_error(&rs->sim, "%s", copy);
    }
    return v ? v : (def ? xstrdup(def) : NULL);
}

static int opt_bool(runstate *rs, const char *key, int def)
{
    char *v = opt_str(rs, key, NULL);
    int b;
    if (!v)
        return def;
    if (parse_bool(v, &b) != 0) {
        char *copy = sim_keep(&rs->sim, xstrdup(v));
        free(v);
        sim_error(&rs->sim, "Invalid value '%s' for configuration option %s: true or false expected",
                  copy, key);
    }
    free(v);
    return b;
}

static double opt_seconds(runstate *rs, const char *key, double def)
{
    char *v = opt_str(rs, key, NULL);
    double d;
    if (!v)
        return def;
    if (parse_quantity(v, TIME_UNITS, 1.0, &d) != 0 || d < 0) {
        char *copy = sim_keep(&rs->sim, xstrdup(v));
        free(v);
        sim_error(&rs->sim, "Invalid value '%s' for configuration option %s: a time expected",
                  copy, key);
    }
    free(v);
    return d;
}

/* Result directory as a path: relative to the ini file's directory unless
 * it was given on the command line (which is relative to the working
 * directory), as OMNeT++ does. */
static char *resolved_resultdir(runstate *rs)
{
    const config_t *cfg = rs->r.cfg;
    int i;
    for (i = 0; i < cfg->ncmdline; i++)
        if (!strcmp(cfg->cmdline[i].key, "result-dir"))
            return xstrdup(rs->r.resultdir);
    return path_join(cfg->ini->dir, rs->r.resultdir);
}

/* Expands a file-name template with ${resultdir} pointing at the resolved
 * directory. */
static char *file_name(runstate *rs, const char *key, const char *def)
{
    char *tmpl = NULL, *err = NULL, *v, *saved = rs->r.resultdir, *raw;
    int i, j;
    const config_t *cfg = rs->r.cfg;
    /* raw template: command line, then the section chain */
    for (i = cfg->ncmdline - 1; i >= 0 && !tmpl; i--)
        if (!strcmp(cfg->cmdline[i].key, key))
            tmpl = cfg->cmdline[i].value;
    for (i = 0; i < cfg->nchain && !tmpl; i++)
        for (j = 0; j < cfg->chain[i]->n; j++)
            if (!strcmp(cfg->chain[i]->entries[j].key, key)) {
                tmpl = cfg->chain[i]->entries[j].value;
                break;
            }
    raw = str_unquote(tmpl ? tmpl : def);
    rs->r.resultdir = resolved_resultdir(rs);
    v = run_subst(&rs->r, raw, &err);
    free(rs->r.resultdir);
    rs->r.resultdir = saved;
    free(raw);
    if (!v) {
        char *copy = sim_keep(&rs->sim, xasprintf("%s (option %s)", err, key));
        free(err);
        sim_error(&rs->sim, "%s", copy);
    }
    return v;
}

/* ---- status lines ---- */

static void print_status(runstate *rs)
{
    sim_t *s = &rs->sim;
    FILE *out = rs->out;
    double now = wall_seconds(), elapsed = now - rs->wall0, dw = now - rs->last_wall;
    double frac = 0, total_pct;
    long long dev = s->event_num - rs->last_events;
    double dt = simtime_to_double(s->now - rs->last_t);
    char tb[32];
    int secs = (int)elapsed;

    if (rs->limit != SIMTIME_MAX && rs->limit > 0) {
        frac = (double)s->now / (double)rs->limit;
        if (frac > 1)
            frac = 1;
    }
    total_pct = 100.0 * ((double)rs->index + frac) / (double)rs->total;
    fprintf(out, "** Event #%lld   t=%s   Elapsed: %gs (%dm %02ds)", s->event_num,
            simtime_str(s->now, tb), elapsed, secs / 60, secs % 60);
    if (rs->limit != SIMTIME_MAX)
        fprintf(out, "  %d%% completed", (int)(100.0 * frac));
    fprintf(out, "  (%d%% total)\n", (int)total_pct);
    if (rs->perf_display) {
        double evps = 0, ssps = 0, evpss = 0;
        if (dw > 0 && dev > 0) {
            evps = (double)dev / dw;
            ssps = dt / dw;
            evpss = dt > 0 ? (double)dev / dt : 0;
        }
        fprintf(out, "     Speed:     ev/sec=%g   simsec/sec=%g   ev/simsec=%g\n", evps, ssps,
                evpss);
        fprintf(out, "     Messages:  created: %lld   present: %lld   in FES: %d\n",
                s->msgs_created, s->msgs_present, fes_size(&s->fes));
    }
    fflush(out);
    rs->last_wall = now;
    rs->last_events = s->event_num;
    rs->last_t = s->now;
}

/* ---- one run ---- */

static void cleanup(runstate *rs, int failed)
{
    if (rs->model) {
        model_destroy(rs->model);
        rs->model = NULL;
    }
    if (rs->sca_started && failed)
        sca_abort(&rs->sca);
    if (failed) {
        /* a failed run leaves no result files behind */
        if (rs->sca_path)
            unlink(rs->sca_path);
    }
    if (rs->out && rs->out != stdout)
        fclose(rs->out);
    else
        fflush(stdout);
    rs->out = NULL;
    free(rs->out_path);
    free(rs->sca_path);
    free(rs->vec_path);
    free(rs->network);
    free(rs->fingerprint);
    sim_free(&rs->sim);
    run_ctx_free(&rs->r);
}

static void remove_old_results(runstate *rs)
{
    char *vci;
    unlink(rs->sca_path);
    unlink(rs->vec_path);
    vci = str_ends_with(rs->vec_path, ".vec")
              ? xasprintf("%.*s.vci", (int)(strlen(rs->vec_path) - 4), rs->vec_path)
              : xasprintf("%s.vci", rs->vec_path);
    unlink(vci);
    free(vci);
}

static void check_fingerprint(runstate *rs)
{
    char calc[16], *expected = rs->fingerprint, *ingr;
    char *copy, *tok, *save = NULL;
    int ok = 0;
    sim_fingerprint_str(&rs->sim, calc);
    ingr = rs->sim.fp_ingredients;
    copy = xstrdup(expected);
    for (tok = strtok_r(copy, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
        char *slash = strchr(tok, '/');
        if (slash)
            *slash = '\0';
        if (!strcmp(tok, calc))
            ok = 1;
    }
    free(copy);
    if (ok)
        fprintf(rs->out, "\n<!> Fingerprint successfully verified: %s/%s\n\n", calc, ingr);
    else
        fprintf(rs->out, "\n<!> Fingerprint mismatch! calculated: %s/%s, expected: %s\n\n", calc,
                ingr, expected);
}

int cmdenv_run(const config_t *cfg, int runnumber, int index, int total, int silent)
{
    runstate *rs;
    jmp_buf on_error;
    sim_t *sim;
    model_env env;
    int term = T_NOMORE;
    double cpu0;
    char tb[32];

    if (network_left_over) {
        report_error("(omnetpp::cSimulation)simulation: setFES(): Cannot switch FES when a network "
                     "is already set up -- during network setup");
        return 1;
    }

    rs = xcalloc(1, sizeof *rs);
    rs->index = index;
    rs->total = total > 0 ? total : 1;
    rs->out = stdout;
    run_ctx_init(&rs->r, cfg, runnumber);
    sim = &rs->sim;
    sim_init(sim);
    sim->on_error = &on_error;

    if (setjmp(on_error)) {
        if (rs->out)
            fflush(rs->out);
        report_error(rs->sim.error ? rs->sim.error : "unknown error");
        cleanup(rs, 1);
        free(rs);
        network_left_over = 1;
        return 1;
    }

    sim->phase = PH_SETUP;
    if (opt_bool(rs, "cmdenv-redirect-output", 0)) {
        char *dir;
        rs->out_path = file_name(rs, "cmdenv-output-file", DEFAULT_OUT_FILE);
        dir = path_dirname(rs->out_path);
        if (mkdir_p(dir) != 0) {
            char *copy = sim_keep(
                sim, xasprintf("Cannot create directory '%s': %s", dir, strerror(errno)));
            free(dir);
            sim_error(sim, "%s", copy);
        }
        free(dir);
        if (!silent) {
            printf("Redirecting output to file \"%s\"...\n", rs->out_path);
            fflush(stdout);
        }
        rs->out = fopen(rs->out_path, "w");
        if (!rs->out) {
            rs->out = stdout;
            sim_error(sim, "Cannot open output redirection file '%s': %s", rs->out_path,
                      strerror(errno));
        }
    }

    if (silent) {
        fprintf(rs->out, "%s run %d: %s\n", cfg->name, runnumber, rs->r.label);
    } else {
        fprintf(rs->out, "\nPreparing for running configuration %s, run #%d...\n", cfg->name,
                runnumber);
        fprintf(rs->out, "Scenario: %s\n", rs->r.label);
        fprintf(rs->out, "Assigned runID=%s\n", rs->r.runid);
    }
    fflush(rs->out);

    if (!*rs->r.resultdir)
        sim_error(sim, "The result-dir configuration option must not be empty");
    rs->network = opt_str(rs, "network", NULL);
    if (!silent)
        fprintf(rs->out, "Setting up network \"%s\"...\n", rs->network ? rs->network : "");
    if (!rs->network || !*rs->network)
        sim_error(sim, "No network specified (missing or empty network= configuration option)");
    if (strcmp(rs->network, "Aloha") != 0)
        sim_error(sim, "Network '%s' or type '%s' not found, check .ini and .ned files",
                  rs->network, rs->network);

    {
        double lim = opt_seconds(rs, "sim-time-limit", -1);
        rs->limit = lim < 0 ? SIMTIME_MAX : simtime_from_double(lim);
    }
    rs->cpu_limit = opt_seconds(rs, "cpu-time-limit", 0);
    rs->real_limit = opt_seconds(rs, "real-time-limit", 0);
    rs->status_freq = opt_seconds(rs, "cmdenv-status-frequency", 2.0);
    rs->perf_display = opt_bool(rs, "cmdenv-performance-display", 1);
    (void)opt_bool(rs, "cmdenv-express-mode", 1); /* validated; only express mode exists */
    rs->fingerprint = opt_str(rs, "fingerprint", NULL);
    if (rs->fingerprint && !*rs->fingerprint) {
        free(rs->fingerprint);
        rs->fingerprint = NULL;
    }
    if (rs->fingerprint) {
        char *ingr = opt_str(rs, "fingerprint-ingredients", "tplx");
        const char *slash = strchr(rs->fingerprint, '/');
        const char *src = ingr;
        char *end;
        if (slash) {
            src = slash + 1;
            end = strpbrk(src, ", \t");
            snprintf(sim->fp_ingredients, sizeof sim->fp_ingredients, "%.*s",
                     (int)(end ? end - src : (long)strlen(src)), src);
        } else {
            snprintf(sim->fp_ingredients, sizeof sim->fp_ingredients, "%s", src);
        }
        free(ingr);
        sim->fp_enabled = 1;
    }
    rs->sca_path = file_name(rs, "output-scalar-file", DEFAULT_SCA_FILE);
    rs->vec_path = file_name(rs, "output-vector-file", DEFAULT_VEC_FILE);
    remove_old_results(rs);

    env.sim = sim;
    env.run = &rs->r;
    env.out = rs->out;
    env.sim_time_limit = rs->limit;
    env.network = rs->network;
    env.vec_path = rs->vec_path;
    rs->model = model_alloc(&env);
    model_setup(rs->model);

    if (!silent)
        fprintf(rs->out, "Initializing...\n");
    sim->phase = PH_INIT;
    model_initialize(rs->model);
    sim_enter_module(sim, NULL, NULL, 0);

    if (!silent)
        fprintf(rs->out, "\nRunning simulation...\n");
    sim->phase = PH_RUN;
    rs->wall0 = rs->last_wall = wall_seconds();
    cpu0 = cpu_seconds();
    print_status(rs);
    for (;;) {
        sim_event *e = fes_peek(&sim->fes);
        if (!e) {
            term = T_NOMORE;
            break;
        }
        if (e->t > rs->limit) {
            sim->now = rs->limit;
            term = T_SIMTIME;
            break;
        }
        fes_pop(&sim->fes);
        sim->now = e->t;
        sim->event_num++;
        if (sim->fp_enabled)
            sim_fingerprint_event(sim, e);
        model_handle(rs->model, e);
        if (sim->end_requested) {
            term = T_ENDSIM;
            break;
        }
        if ((sim->event_num & 1023) == 0) {
            double w = wall_seconds();
            if (rs->cpu_limit > 0 && cpu_seconds() - cpu0 >= rs->cpu_limit) {
                term = T_CPU;
                break;
            }
            if (rs->real_limit > 0 && w - rs->wall0 >= rs->real_limit) {
                term = T_REAL;
                break;
            }
            if (w - rs->last_wall >= rs->status_freq)
                print_status(rs);
        }
    }
    sim_enter_module(sim, NULL, NULL, 0);
    print_status(rs);
    switch (term) {
    case T_SIMTIME:
        fprintf(rs->out, "\n<!> Simulation time limit reached -- at t=%ss, event #%lld\n",
                simtime_str(sim->now, tb), sim->event_num);
        break;
    case T_CPU:
        fprintf(rs->out, "\n<!> CPU time limit reached -- at t=%ss, event #%lld\n",
                simtime_str(sim->now, tb), sim->event_num);
        break;
    case T_REAL:
        fprintf(rs->out, "\n<!> Real-time limit reached -- at t=%ss, event #%lld\n",
                simtime_str(sim->now, tb), sim->event_num);
        break;
    case T_ENDSIM:
        fprintf(rs->out,
                "\n<!> Simulation stopped with endSimulation() -- at t=%ss, event #%lld\n",
                simtime_str(sim->now, tb), sim->event_num);
        break;
    default:
        fprintf(rs->out, "\n<!> No more events, simulation completed -- at t=%ss, event #%lld\n",
                simtime_str(sim->now, tb), sim->event_num);
        break;
    }

    sim->phase = PH_FINISH;
    if (!silent)
        fprintf(rs->out, "\nCalling finish() at end of Run #%d...\n", runnumber);
    {
        char *err = NULL;
        if (sca_open(&rs->sca, rs->sca_path, &rs->r, rs->network, &err) != 0) {
            char *copy = sim_keep(sim, xstrdup(err));
            free(err);
            sca_abort(&rs->sca);
            sim_error(sim, "%s", copy);
        }
        rs->sca_started = 1;
        model_finish(rs->model, &rs->sca);
        sim_enter_module(sim, NULL, NULL, 0);
        if (model_close_vectors(rs->model, &err) != 0) {
            char *copy = sim_keep(sim, xstrdup(err));
            free(err);
            sim_error(sim, "%s", copy);
        }
        if (sca_commit(&rs->sca, &err) != 0) {
            char *copy = sim_keep(sim, xstrdup(err));
            free(err);
            rs->sca_started = 0;
            sim_error(sim, "%s", copy);
        }
        rs->sca_started = 0;
    }
    if (rs->fingerprint)
        check_fingerprint(rs);
    fflush(rs->out);
    if (ferror(rs->out))
        sim_error(sim, "Cannot write console output%s%s", rs->out_path ? " to " : "",
                  rs->out_path ? rs->out_path : "");
    sim->on_error = NULL;
    cleanup(rs, 0);
    free(rs);
    return 0;
}

int cmdenv_stop_batch_on_error(const config_t *cfg, int runnumber)
{
    run_ctx r;
    char *err = NULL, *v;
    int b = 1;
    run_ctx_init_light(&r, cfg, runnumber);
    v = run_option_str(&r, "cmdenv-stop-batch-on-error", &err);
    if (v && parse_bool(v, &b) != 0)
        b = 1;
    free(v);
    free(err);
    run_ctx_free(&r);
    return b;
}
