/*
 * model.h -- the ALOHA network: numHosts hosts sending packets with
 * exponentially distributed inter-arrival times over one shared radio
 * channel to a server; overlapping receptions at the server collide.
 * Pure ALOHA when slotTime = 0, slotted ALOHA otherwise. The server also
 * runs a channel monitor that samples the channel state periodically.
 *
 * Besides the model, a few knobs turn a run into a test workload for the
 * tools that drive it (see README.md): failMode, chattyBytes, workload
 * (sleep, noop) and vectorBytes.
 */
#ifndef ALOHA_MODEL_H
#define ALOHA_MODEL_H

#include <stdio.h>

#include "config.h"
#include "results.h"
#include "sim.h"

typedef struct {
    sim_t *sim;
    const run_ctx *run;
    FILE *out;                 /* console: stdout or the redirected .out file */
    simtime_t sim_time_limit;  /* SIMTIME_MAX when none */
    const char *network;       /* "Aloha" */
    const char *vec_path;      /* output vector file */
} model_env;

typedef struct model model_t;

model_t *model_alloc(model_env *env);       /* cannot fail */
void model_setup(model_t *m);               /* reads parameters, builds modules */
void model_initialize(model_t *m);
void model_handle(model_t *m, sim_event *e);
void model_finish(model_t *m, sca_writer *sca);
int model_close_vectors(model_t *m, char **err);
void model_destroy(model_t *m);             /* also after a failure at any stage */

#endif
