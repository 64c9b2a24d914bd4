/*  nf-broker: parse configuration, build the broker, run it. */
#include "nf_broker.h"
#include "nf_config.h"
#include "nf_log.h"
#include "nf_sql.h"
#include "nf_states.h"
#include "nf_version.h"

#include <czmq.h>
#include <jansson.h>
#include <string.h>

/* `nf-broker statements`: the cycle's per-video statements as the broker
   prepares them, for bench/floor.py, which runs them straight against
   PostgreSQL (the ceiling of the cycle's database work). JSON: the
   planner settings of a cycle's transaction and, per video-scope stage,
   its service, states, CLAIM and OK texts. */
static int
s_print_statements (void)
{
    json_t *stages = json_array ();
    size_t n;
    const nf_stage_t *st = nf_stages (&n);
    for (size_t i = 0; i < n; i++) {
        if (st[i].scope != NF_SCOPE_VIDEO || !st[i].state_in)
            continue;
        nf_sql_t q;
        if (nf_sql_build (&q, &st[i]) != 0) {
            json_decref (stages);
            return 1;
        }
        json_array_append_new (stages,
                               json_pack ("{s:s, s:s, s:s, s:s, s:s}", "service", st[i].service,
                                          "state_in", st[i].state_in, "state_out", st[i].state_out,
                                          "claim", q.text[NF_SQL_CLAIM], "ok", q.text[NF_SQL_OK]));
        nf_sql_free (&q);
    }
    json_t *doc = json_pack ("{s:s, s:o}", "plan", NF_SQL_PLAN_LOOKUPS, "stages", stages);
    int rc = doc && json_dumpf (doc, stdout, JSON_INDENT (1)) == 0 ? 0 : 1;
    json_decref (doc);
    putchar ('\n');
    return rc;
}

int
main (int argc, char **argv)
{
    nf_config_t *config = nf_config_new ("nf-broker", NF_PROG_BROKER);
    if (!config || nf_config_load (config, argc, argv) != 0) {
        nf_config_destroy (&config); /* said why on stderr */
        return 2;
    }
    if (nf_config_wants_version (config)) {
        printf ("nf-broker %s\n", NF_VERSION);
        nf_config_destroy (&config);
        return 0;
    }
    if (nf_config_argc (config) == 1 && strcmp (nf_config_arg (config, 0), "config-table") == 0) {
        nf_config_print_markdown (stdout); /* the README's table: every program's settings */
        nf_config_destroy (&config);
        return 0;
    }
    if (nf_config_argc (config) == 1 && strcmp (nf_config_arg (config, 0), "states-table") == 0) {
        nf_states_print_markdown (stdout); /* the README's tables: stages, job statuses */
        nf_config_destroy (&config);
        return 0;
    }
    if (nf_config_argc (config) == 1 && strcmp (nf_config_arg (config, 0), "statements") == 0) {
        int rc = s_print_statements ();
        nf_config_destroy (&config);
        return rc;
    }
    if (nf_config_wants_help (config) || nf_config_argc (config) > 0) {
        FILE *out = nf_config_argc (config) ? stderr : stdout;
        fprintf (out, "Usage: nf-broker [settings]\nThe nicheflow broker: owns the pipeline "
                      "state in PostgreSQL and dispatches tasks to workers over MDP/0.1.\n\n");
        nf_config_print_help (config, out);
        int rc = nf_config_argc (config) ? 2 : 0;
        nf_config_destroy (&config);
        return rc;
    }
    nf_config_apply_logging (config);
    zsys_init (); /* installs czmq's SIGINT/SIGTERM handler: it sets zsys_interrupted */
    nf_broker_t *broker = nf_broker_new (config);
    int rc = broker ? nf_broker_run (broker) : 1;
    nf_broker_destroy (&broker);
    nf_config_destroy (&config);
    return rc;
}
