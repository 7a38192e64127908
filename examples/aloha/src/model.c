#include "model.h"

#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "params.h"
#include "rng.h"

#define PROPAGATION_SPEED 299792458.0 /* m/s */

/* event kinds */
enum {
    EV_HOST_SEND = 1, /* host: start sending the next packet */
    EV_HOST_END_TX,   /* host: transmission finished */
    EV_PACKET,        /* server: the first bit of a packet arrives */
    EV_SERVER_RX_END, /* server: the channel becomes free */
    EV_SERVER_SAMPLE, /* server: channel monitor sample */
    EV_SERVER_FAIL,   /* server: the configured failure happens */
};

enum { CH_IDLE = 0, CH_TRANSMISSION = 1, CH_COLLISION = 2 };

enum workload { WL_ALOHA, WL_SLEEP, WL_NOOP };
enum failmode { FM_OK, FM_ERROR, FM_CRASH, FM_SEGFAULT, FM_HANG };

typedef struct {
    sim_event ev;
    simtime_t duration;
    int host;
} packet_t;

typedef struct {
    int index, id;
    char path[48];
    rng_t rng;
    dist_t ia_time, pk_len_bits;
    char *ia_time_text, *pk_len_text;
    double x, y;
    simtime_t radio_delay;
    int transmitting;
    sim_event ev_send, ev_end_tx;
    long pk_sent;
    double bits_sent;
    simtime_t tx_time;
    int vec_radio;
} host_t;

typedef struct {
    int id;
    rng_t rng;
    double x, y;
    int busy, frames;          /* frames: 0 = clean reception, >=2 = collision */
    simtime_t rx_start;
    sim_event ev_rx_end, ev_sample, ev_fail;
    long received, collided_frames, collisions;
    simtime_t success_time;
    histogram_t coll_mult, coll_len;
    simtime_t sample_interval;
    long samples, busy_samples, coll_samples;
    double ewma;
    histogram_t ewma_hist;
    int vec_state, vec_sampled;
} server_t;

struct model {
    model_env env;
    param_src ps;
    int workload;
    int fail_mode;
    char *fail_mode_text;
    simtime_t fail_at;
    double hang_time;
    double sleep_time;
    uint64_t chatty_bytes;
    uint64_t vector_bytes;
    long num_hosts;
    double tx_rate;
    simtime_t slot_time;
    long seedset;
    host_t *hosts;
    int nhosts_built;
    server_t server;
    int server_built;
    vec_writer vw;
    int vec_open;
    long long packets_alive;
};

/* ------------------------------------------------------------------ */

model_t *model_alloc(model_env *env)
{
    model_t *m = xcalloc(1, sizeof *m);
    m->env = *env;
    m->ps.sim = env->sim;
    m->ps.run = env->run;
    m->server.vec_state = m->server.vec_sampled = -1;
    return m;
}

static void init_event(sim_event *e, int kind, int module, void *data)
{
    memset(e, 0, sizeof *e);
    e->heap_index = -1;
    e->kind = kind;
    e->module = module;
    e->data = data;
}

static int parse_workload(const char *s)
{
    if (!strcmp(s, "aloha"))
        return WL_ALOHA;
    if (!strcmp(s, "sleep"))
        return WL_SLEEP;
    if (!strcmp(s, "noop"))
        return WL_NOOP;
    return -1;
}

static int parse_failmode(const char *s)
{
    if (!strcmp(s, "ok"))
        return FM_OK;
    if (!strcmp(s, "error"))
        return FM_ERROR;
    if (!strcmp(s, "crash"))
        return FM_CRASH;
    if (!strcmp(s, "segfault"))
        return FM_SEGFAULT;
    if (!strcmp(s, "hang"))
        return FM_HANG;
    return -1;
}

static int vector_enabled(model_t *m, const char *module, const char *name)
{
    char *err = NULL, *obj = xasprintf("%s.%s", module, name);
    int on = run_perobject_bool(m->env.run, obj, "vector-recording", 1, &err);
    free(obj);
    if (err) {
        char *copy = sim_keep(m->env.sim, xstrdup(err));
        free(err);
        sim_error(m->env.sim, "%s", copy);
    }
    return on;
}

static int scalar_enabled(model_t *m, const char *module, const char *name)
{
    char *err = NULL, *obj = xasprintf("%s.%s", module, name);
    int on = run_perobject_bool(m->env.run, obj, "scalar-recording", 1, &err);
    free(obj);
    if (err) {
        char *copy = sim_keep(m->env.sim, xstrdup(err));
        free(err);
        sim_error(m->env.sim, "%s", copy);
    }
    return on;
}

static int open_vectors_if_needed(model_t *m)
{
    char *err = NULL;
    if (m->vec_open)
        return 1;
    if (vec_open(&m->vw, m->env.vec_path, m->env.run, m->env.network, &err) != 0) {
        char *copy = sim_keep(m->env.sim, xstrdup(err));
        free(err);
        vec_abort(&m->vw);
        sim_error(m->env.sim, "%s", copy);
    }
    m->vec_open = 1;
    return 1;
}

void model_setup(model_t *m)
{
    param_src *p = &m->ps;
    sim_t *sim = m->env.sim;
    char *s;
    long i;
    simtime_t limit = m->env.sim_time_limit;

    s = par_string(p, "Aloha.workload", "aloha");
    m->workload = parse_workload(s);
    if (m->workload < 0) {
        char *copy = sim_keep(sim, xstrdup(s));
        free(s);
        sim_error(sim, "Invalid value \"%s\" for parameter Aloha.workload (aloha, sleep or noop "
                       "expected)", copy);
    }
    free(s);

    m->fail_mode_text = par_string(p, "Aloha.failMode", "ok");
    m->fail_mode = parse_failmode(m->fail_mode_text);
    if (m->fail_mode < 0)
        sim_error(sim, "Invalid value \"%s\" for parameter Aloha.failMode (ok, error, crash, "
                       "segfault or hang expected)", m->fail_mode_text);
    {
        double def = limit == SIMTIME_MAX ? 1.0 : simtime_to_double(limit) / 2;
        char buf[64];
        snprintf(buf, sizeof buf, "%.17gs", def);
        m->fail_at = simtime_from_double(
            par_quantity(p, "Aloha.failAt", TIME_UNITS, 1, buf, "s"));
    }
        /* test knobs: plain numbers are accepted as seconds / bytes */
    m->hang_time = par_quantity(p, "Aloha.hangTime", TIME_UNITS, 1, "60s", "s");
    m->sleep_time = par_quantity(p, "Aloha.sleepTime", TIME_UNITS, 1, "500ms", "s");
    m->chatty_bytes = (uint64_t)par_quantity(p, "Aloha.chattyBytes", BYTE_UNITS, 1, "0B", "B");
    m->vector_bytes = (uint64_t)par_quantity(p, "Aloha.vectorBytes", BYTE_UNITS, 1, "0B", "B");
    if (m->hang_time < 0 || m->sleep_time < 0)
        sim_error(sim, "Parameters Aloha.hangTime and Aloha.sleepTime must not be negative");

    m->num_hosts = par_long(p, "Aloha.numHosts", 10);
    if (m->num_hosts < 0 || m->num_hosts > 100000)
        sim_error(sim, "Parameter Aloha.numHosts=%ld is out of range 0..100000", m->num_hosts);
    m->tx_rate = par_quantity(p, "Aloha.txRate", BITRATE_UNITS, 0, "9.6kbps", "bps");
    if (!(m->tx_rate > 0))
        sim_error(sim, "Parameter Aloha.txRate must be positive");
    m->slot_time = simtime_from_double(par_quantity(p, "Aloha.slotTime", TIME_UNITS, 0, "0s", "s"));
    if (m->slot_time < 0)
        sim_error(sim, "Parameter Aloha.slotTime must not be negative");
    {
        char *err = NULL, *ss = run_option(m->env.run, "seed-set", &err);
        if (err) {
            char *copy = sim_keep(sim, xstrdup(err));
            free(err);
            sim_error(sim, "%s", copy);
        }
        m->seedset = m->env.run->repetition;
        if (ss && parse_long_strict(ss, &m->seedset) != 0) {
            char *copy = sim_keep(sim, xstrdup(ss));
            free(ss);
            sim_error(sim, "Invalid seed-set '%s' (integer expected)", copy);
        }
        free(ss);
    }

    if (m->workload != WL_ALOHA)
        m->num_hosts = 0;

    /* server (module id 2; the network itself is id 1) */
    {
        server_t *sv = &m->server;
        dist_t dx, dy;
        sv->id = 2;
        rng_seed(&sv->rng, (uint64_t)m->seedset, 0);
        hist_init(&sv->coll_mult, 1.0);
        hist_init(&sv->coll_len, 0.01);
        hist_init(&sv->ewma_hist, 0.01);
        m->server_built = 1;
        init_event(&sv->ev_rx_end, EV_SERVER_RX_END, sv->id, NULL);
        sv->ev_rx_end.prio = -1; /* the channel frees up before a same-time arrival */
        init_event(&sv->ev_sample, EV_SERVER_SAMPLE, sv->id, NULL);
        init_event(&sv->ev_fail, EV_SERVER_FAIL, sv->id, NULL);
        dx = par_dist(p, "Aloha.server.x", DISTANCE_UNITS, 0, "uniform(0m, 1000m)", NULL);
        dy = par_dist(p, "Aloha.server.y", DISTANCE_UNITS, 0, "uniform(0m, 1000m)", NULL);
        sv->x = dist_sample(&dx, &sv->rng);
        sv->y = dist_sample(&dy, &sv->rng);
        sv->sample_interval = simtime_from_double(
            par_quantity(p, "Aloha.server.sampleInterval", TIME_UNITS, 0, "10ms", "s"));
        if (sv->sample_interval < 0)
            sim_error(sim, "Parameter Aloha.server.sampleInterval must not be negative");
        m->env.sim->msgs_created += 3;
        m->env.sim->msgs_present += 3;
    }

    m->hosts = xcalloc((size_t)m->num_hosts + 1, sizeof *m->hosts);
    for (i = 0; i < m->num_hosts; i++) {
        host_t *h = &m->hosts[i];
        char key[64];
        dist_t dx, dy;
        double dist;
        h->index = (int)i;
        h->id = 3 + (int)i;
        h->vec_radio = -1;
        snprintf(h->path, sizeof h->path, "Aloha.host[%ld]", i);
        rng_seed(&h->rng, (uint64_t)m->seedset, (uint64_t)i + 1);
        init_event(&h->ev_send, EV_HOST_SEND, h->id, h);
        init_event(&h->ev_end_tx, EV_HOST_END_TX, h->id, h);
        m->nhosts_built = (int)i + 1;
        snprintf(key, sizeof key, "%s.iaTime", h->path);
        h->ia_time = par_dist(p, key, TIME_UNITS, 0, "exponential(2s)", &h->ia_time_text);
        snprintf(key, sizeof key, "%s.pkLenBits", h->path);
        h->pk_len_bits = par_dist(p, key, BIT_UNITS, 0, "952b", &h->pk_len_text);
        snprintf(key, sizeof key, "%s.x", h->path);
        dx = par_dist(p, key, DISTANCE_UNITS, 0, "uniform(0m, 1000m)", NULL);
        snprintf(key, sizeof key, "%s.y", h->path);
        dy = par_dist(p, key, DISTANCE_UNITS, 0, "uniform(0m, 1000m)", NULL);
        h->x = dist_sample(&dx, &h->rng);
        h->y = dist_sample(&dy, &h->rng);
        dist = hypot(h->x - m->server.x, h->y - m->server.y);
        h->radio_delay = simtime_from_double(dist / PROPAGATION_SPEED);
        m->env.sim->msgs_created += 2;
        m->env.sim->msgs_present += 2;
    }
}

/* ------------------------------------------------------------------ */

static void write_chatty(model_t *m)
{
    static const char line[] =
        "[INFO]\tAloha.server: chatty output for testing how callers handle big outputs\n";
    const size_t linelen = sizeof line - 1, chunk = 1 << 20;
    char *buf;
    size_t filled = 0;
    uint64_t left = m->chatty_bytes;
    if (!left)
        return;
    buf = xmalloc(chunk);
    while (filled + linelen <= chunk) {
        memcpy(buf + filled, line, linelen);
        filled += linelen;
    }
    fflush(m->env.out);
    while (left > 0) {
        size_t n = left < filled ? (size_t)left : filled;
        if (n < filled && n > 0) {
            /* last piece: keep the byte count exact but end with a newline */
            char saved = buf[n - 1];
            buf[n - 1] = '\n';
            fwrite(buf, 1, n, m->env.out);
            buf[n - 1] = saved;
        } else {
            fwrite(buf, 1, n, m->env.out);
        }
        if (ferror(m->env.out)) {
            free(buf);
            sim_error(m->env.sim, "Cannot write console output (chattyBytes)");
        }
        left -= n;
    }
    fflush(m->env.out);
    free(buf);
}

static simtime_t next_send_time(model_t *m, host_t *h)
{
    simtime_t t = m->env.sim->now + simtime_from_double(dist_sample(&h->ia_time, &h->rng));
    if (m->slot_time > 0)
        t = ((t + m->slot_time - 1) / m->slot_time) * m->slot_time;
    return t;
}

void model_initialize(model_t *m)
{
    sim_t *sim = m->env.sim;
    server_t *sv = &m->server;
    int i;

    sim_enter_module(sim, "Server", "Aloha.server", sv->id);
    write_chatty(m);

    if (m->workload == WL_SLEEP) {
        fflush(m->env.out);
        sleep_seconds(m->sleep_time);
    }
    if (m->workload == WL_ALOHA) {
        static const char *const sampled_attrs[] = {
            "enum", "IDLE=0,TRANSMISSION=1,COLLISION=2", "recordingmode", "vector", "source",
            "channelMonitor", "title", "Sampled channel state", NULL};
        static const char *const state_attrs[] = {
            "enum", "IDLE=0,TRANSMISSION=1,COLLISION=2", "recordingmode", "vector", "source",
            "channelState", "title", "Channel state", NULL};
        static const char *const radio_attrs[] = {"enum", "IDLE=0,TRANSMIT=1", "recordingmode",
                                                  "vector", "source", "state", "title",
                                                  "Radio state", NULL};
        if (vector_enabled(m, "Aloha.server", "channelState:vector") &&
            open_vectors_if_needed(m))
            sv->vec_state = vec_declare(&m->vw, "Aloha.server", "channelState:vector", state_attrs);
        if (sv->sample_interval > 0 &&
            vector_enabled(m, "Aloha.server", "sampledChannelState:vector") &&
            open_vectors_if_needed(m))
            sv->vec_sampled = vec_declare(&m->vw, "Aloha.server", "sampledChannelState:vector",
                                          sampled_attrs);
        for (i = 0; i < m->num_hosts; i++) {
            host_t *h = &m->hosts[i];
            if (vector_enabled(m, h->path, "radioState:vector") && open_vectors_if_needed(m))
                h->vec_radio = vec_declare(&m->vw, h->path, "radioState:vector", radio_attrs);
        }
        if (sv->vec_state >= 0)
            vec_record(&m->vw, sv->vec_state, 0, 0, CH_IDLE);
        if (sv->sample_interval > 0)
            sim_schedule(sim, &sv->ev_sample, sv->sample_interval);
        for (i = 0; i < m->num_hosts; i++) {
            host_t *h = &m->hosts[i];
            sim_enter_module(sim, "Host", h->path, h->id);
            if (h->vec_radio >= 0)
                vec_record(&m->vw, h->vec_radio, 0, 0, 0);
            sim_schedule(sim, &h->ev_send, next_send_time(m, h));
        }
        sim_enter_module(sim, "Server", "Aloha.server", sv->id);
    }
    if (m->fail_mode != FM_OK)
        sim_schedule(sim, &sv->ev_fail, m->fail_at);
}

/* ------------------------------------------------------------------ */

static void record(model_t *m, int vec, double value)
{
    if (vec < 0)
        return;
    vec_record(&m->vw, vec, m->env.sim->event_num, m->env.sim->now, value);
    if (m->vector_bytes && vec_bytes(&m->vw) >= m->vector_bytes)
        sim_end_simulation(m->env.sim);
}

static void host_send(model_t *m, host_t *h)
{
    sim_t *sim = m->env.sim;
    packet_t *pk = xmalloc(sizeof *pk);
    double bits = dist_sample(&h->pk_len_bits, &h->rng);
    simtime_t dur;
    if (bits <= 0)
        sim_error(sim, "Packet length must be positive (pkLenBits drew %g)", bits);
    dur = simtime_from_double(bits / m->tx_rate);
    init_event(&pk->ev, EV_PACKET, m->server.id, pk);
    pk->duration = dur;
    pk->host = h->index;
    sim->msgs_created++;
    sim->msgs_present++;
    m->packets_alive++;
    sim_schedule(sim, &pk->ev, sim->now + h->radio_delay);
    h->transmitting = 1;
    h->pk_sent++;
    h->bits_sent += bits;
    h->tx_time += dur;
    record(m, h->vec_radio, 1);
    sim_schedule(sim, &h->ev_end_tx, sim->now + dur);
}

static void host_end_tx(model_t *m, host_t *h)
{
    h->transmitting = 0;
    record(m, h->vec_radio, 0);
    sim_schedule(m->env.sim, &h->ev_send, next_send_time(m, h));
}

static void server_packet(model_t *m, packet_t *pk)
{
    sim_t *sim = m->env.sim;
    server_t *sv = &m->server;
    simtime_t end = sim->now + pk->duration;
    if (!sv->busy) {
        sv->busy = 1;
        sv->frames = 0;
        sv->rx_start = sim->now;
        sim_schedule(sim, &sv->ev_rx_end, end);
        record(m, sv->vec_state, CH_TRANSMISSION);
    } else {
        if (sv->frames == 0) {
            sv->frames = 2;
            record(m, sv->vec_state, CH_COLLISION);
        } else {
            sv->frames++;
        }
        if (end > sv->ev_rx_end.t) {
            sim_cancel(sim, &sv->ev_rx_end);
            sim_schedule(sim, &sv->ev_rx_end, end);
        }
    }
    free(pk);
    m->packets_alive--;
    sim->msgs_present--;
}

static void server_rx_end(model_t *m)
{
    sim_t *sim = m->env.sim;
    server_t *sv = &m->server;
    if (sv->frames == 0) {
        sv->received++;
        sv->success_time += sim->now - sv->rx_start;
    } else {
        sv->collisions++;
        sv->collided_frames += sv->frames;
        hist_add(&sv->coll_mult, sv->frames);
        hist_add(&sv->coll_len, simtime_to_double(sim->now - sv->rx_start));
    }
    sv->busy = 0;
    sv->frames = 0;
    record(m, sv->vec_state, CH_IDLE);
}

static void server_sample(model_t *m)
{
    sim_t *sim = m->env.sim;
    server_t *sv = &m->server;
    int state = !sv->busy ? CH_IDLE : sv->frames ? CH_COLLISION : CH_TRANSMISSION;
    sv->samples++;
    if (state != CH_IDLE)
        sv->busy_samples++;
    if (state == CH_COLLISION)
        sv->coll_samples++;
    /* exponentially weighted busy-ness, as a carrier-sense MAC would estimate it */
    sv->ewma += 0.01 * ((state != CH_IDLE ? 1.0 : 0.0) - sv->ewma);
    hist_add(&sv->ewma_hist, sv->ewma);
    record(m, sv->vec_sampled, state);
    sim_schedule(sim, &sv->ev_sample, sim->now + sv->sample_interval);
}

static void server_fail(model_t *m)
{
    sim_t *sim = m->env.sim;
    double start;
    switch (m->fail_mode) {
    case FM_ERROR:
        sim_error(sim, "Simulated model failure (failMode=\"error\")");
    case FM_CRASH:
        fflush(NULL);
        abort();
    case FM_SEGFAULT: {
        int *volatile nowhere = NULL;
        fflush(NULL);
        *nowhere = 42; /* a real invalid memory access: SIGSEGV */
        raise(SIGSEGV);
        break;
    }
    case FM_HANG:
        fflush(NULL);
        start = wall_seconds();
        while (wall_seconds() - start < m->hang_time)
            sleep_seconds(0.1);
        sim_error(sim, "Simulated hang (failMode=\"hang\") gave up after %gs", m->hang_time);
    default:
        break;
    }
}

void model_handle(model_t *m, sim_event *e)
{
    sim_t *sim = m->env.sim;
    switch (e->kind) {
    case EV_HOST_SEND: {
        host_t *h = e->data;
        sim_enter_module(sim, "Host", h->path, h->id);
        host_send(m, h);
        break;
    }
    case EV_HOST_END_TX: {
        host_t *h = e->data;
        sim_enter_module(sim, "Host", h->path, h->id);
        host_end_tx(m, h);
        break;
    }
    case EV_PACKET:
        sim_enter_module(sim, "Server", "Aloha.server", m->server.id);
        server_packet(m, e->data);
        break;
    case EV_SERVER_RX_END:
        sim_enter_module(sim, "Server", "Aloha.server", m->server.id);
        server_rx_end(m);
        break;
    case EV_SERVER_SAMPLE:
        sim_enter_module(sim, "Server", "Aloha.server", m->server.id);
        server_sample(m);
        break;
    case EV_SERVER_FAIL:
        sim_enter_module(sim, "Server", "Aloha.server", m->server.id);
        server_fail(m);
        break;
    default:
        sim_error(sim, "Unknown event kind %d", e->kind);
    }
}

/* ------------------------------------------------------------------ */

static void scalar(model_t *m, sca_writer *w, const char *module, const char *name, double v,
                   const char *const *attrs)
{
    if (scalar_enabled(m, module, name))
        sca_scalar(w, module, name, v, attrs);
}

static void histogram(model_t *m, sca_writer *w, const char *module, const char *name,
                      const histogram_t *h, const char *const *attrs)
{
    if (scalar_enabled(m, module, name))
        sca_histogram(w, module, name, h, attrs);
}

void model_finish(model_t *m, sca_writer *w)
{
    sim_t *sim = m->env.sim;
    server_t *sv = &m->server;
    double duration = simtime_to_double(sim->now);
    char tb[32], buf[64];
    int i;

    sim_enter_module(sim, "Server", "Aloha.server", sv->id);
    fprintf(m->env.out, "[INFO]\tduration: %s\n", simtime_str(sim->now, tb));

    /* parameters, as OMNeT++ records them */
    snprintf(buf, sizeof buf, "%ld", m->num_hosts);
    sca_par(w, "Aloha", "numHosts", buf, NULL);
    snprintf(buf, sizeof buf, "%.14gbps", m->tx_rate);
    sca_par(w, "Aloha", "txRate", buf, "bps");
    snprintf(buf, sizeof buf, "%ss", simtime_str(m->slot_time, tb));
    sca_par(w, "Aloha", "slotTime", buf, "s");

    if (m->workload == WL_SLEEP) {
        scalar(m, w, "Aloha", "sleepTime", m->sleep_time, NULL);
        return;
    }
    if (m->workload == WL_NOOP) {
        scalar(m, w, "Aloha", "noop", 1, NULL);
        return;
    }

    snprintf(buf, sizeof buf, "%.6gm", sv->x);
    sca_par(w, "Aloha.server", "x", buf, "m");
    snprintf(buf, sizeof buf, "%.6gm", sv->y);
    sca_par(w, "Aloha.server", "y", buf, "m");
    scalar(m, w, "Aloha.server", "duration", duration, NULL);
    {
        static const char *const a1[] = {"recordingmode", "histogram", "title", "collision length",
                                         NULL};
        static const char *const a2[] = {"recordingmode", "histogram", "source", "collision",
                                         "title", "collision multiplicity", NULL};
        static const char *const a3[] = {"recordingmode", "last", "source", "sum(collision)",
                                         "title", "collided frames, last", NULL};
        static const char *const a4[] = {"interpolationmode", "linear", "recordingmode", "last",
                                         "source", "timeavg(receive)", "title",
                                         "channel utilization, last", NULL};
        static const char *const a5[] = {"recordingmode", "last", "source", "sum(receive)",
                                         "title", "received frames, last", NULL};
        static const char *const a6[] = {"recordingmode", "mean", "title",
                                         "collision length, mean", NULL};
        static const char *const a7[] = {"recordingmode", "sum", "title", "collision length, sum",
                                         NULL};
        static const char *const a8[] = {"recordingmode", "max", "title", "collision length, max",
                                         NULL};
        static const char *const a9[] = {"recordingmode", "histogram", "source", "channelMonitor",
                                         "title", "smoothed channel busy-ness", NULL};
        double util = duration > 0 ? simtime_to_double(sv->success_time) / duration : 0;
        histogram(m, w, "Aloha.server", "collisionLength:histogram", &sv->coll_len, a1);
        scalar(m, w, "Aloha.server", "collisionLength:mean",
               sv->coll_len.st.count ? stat_mean(&sv->coll_len.st) : NAN, a6);
        scalar(m, w, "Aloha.server", "collisionLength:sum", sv->coll_len.st.sum, a7);
        scalar(m, w, "Aloha.server", "collisionLength:max",
               sv->coll_len.st.count ? sv->coll_len.st.max : NAN, a8);
        histogram(m, w, "Aloha.server", "collisionMultiplicity:histogram", &sv->coll_mult, a2);
        scalar(m, w, "Aloha.server", "collidedFrames:last", (double)sv->collided_frames, a3);
        scalar(m, w, "Aloha.server", "channelUtilization:last", util, a4);
        scalar(m, w, "Aloha.server", "receivedFrames:last", (double)sv->received, a5);
        scalar(m, w, "Aloha.server", "collisions:count", (double)sv->collisions, NULL);
        if (sv->sample_interval > 0) {
            histogram(m, w, "Aloha.server", "busyEstimate:histogram", &sv->ewma_hist, a9);
            scalar(m, w, "Aloha.server", "monitorSamples:count", (double)sv->samples, NULL);
            scalar(m, w, "Aloha.server", "sampledBusyFraction:last",
                   sv->samples ? (double)sv->busy_samples / (double)sv->samples : 0, NULL);
            scalar(m, w, "Aloha.server", "sampledCollisionFraction:last",
                   sv->samples ? (double)sv->coll_samples / (double)sv->samples : 0, NULL);
        }
    }
    {
        long sent = 0;
        simtime_t txtime = 0;
        for (i = 0; i < m->num_hosts; i++) {
            host_t *h = &m->hosts[i];
            static const char *const b1[] = {"recordingmode", "count", "source", "pkSent",
                                             "title", "packets sent, count", NULL};
            static const char *const b2[] = {"recordingmode", "sum", "source", "pkSent",
                                             "title", "bits sent, sum", "unit", "b", NULL};
            sim_enter_module(sim, "Host", h->path, h->id);
            sca_par(w, h->path, "iaTime", h->ia_time_text, "s");
            sca_par(w, h->path, "pkLenBits", h->pk_len_text, "b");
            snprintf(buf, sizeof buf, "%.6gm", h->x);
            sca_par(w, h->path, "x", buf, "m");
            snprintf(buf, sizeof buf, "%.6gm", h->y);
            sca_par(w, h->path, "y", buf, "m");
            scalar(m, w, h->path, "pkSent:count", (double)h->pk_sent, b1);
            scalar(m, w, h->path, "bitsSent:sum", h->bits_sent, b2);
            sent += h->pk_sent;
            txtime += h->tx_time;
        }
        sim_enter_module(sim, "Server", "Aloha.server", sv->id);
        scalar(m, w, "Aloha", "packetsSent", (double)sent, NULL);
        scalar(m, w, "Aloha", "offeredLoad",
               duration > 0 ? simtime_to_double(txtime) / duration : 0, NULL);
        scalar(m, w, "Aloha", "throughput",
               duration > 0 ? simtime_to_double(sv->success_time) / duration : 0, NULL);
    }
}

int model_close_vectors(model_t *m, char **err)
{
    int rc = 0;
    if (m->vec_open) {
        rc = vec_close(&m->vw, err);
        m->vec_open = 0;
    }
    return rc;
}

void model_destroy(model_t *m)
{
    sim_t *sim;
    int i;
    if (!m)
        return;
    sim = m->env.sim;
    /* packets still travelling are owned by the FES */
    while (fes_size(&sim->fes) > 0) {
        sim_event *e = fes_pop(&sim->fes);
        if (e->kind == EV_PACKET)
            free(e->data);
    }
    if (m->vec_open) {
        vec_abort(&m->vw);
        m->vec_open = 0;
    }
    for (i = 0; i < m->nhosts_built; i++) {
        free(m->hosts[i].ia_time_text);
        free(m->hosts[i].pk_len_text);
    }
    free(m->hosts);
    if (m->server_built) {
        hist_free(&m->server.coll_mult);
        hist_free(&m->server.coll_len);
        hist_free(&m->server.ewma_hist);
    }
    free(m->fail_mode_text);
    free(m);
}
