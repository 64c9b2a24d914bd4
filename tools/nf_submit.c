/*  nf-submit: enqueue niches and look after jobs, as an MDP/0.1 client of
    the broker (it never touches the database).

      nf-submit NICHE [--sub-niche S] [--count N] [--top-n N] [--since DATE]
                [--until DATE] [--region CC] [--lang L] [--min-views N]
                [--format long|short|any] [--max-pages N] [--order O]
                [--priority high|standard|bulk|background]
      nf-submit status JOB | list | cancel JOB | retry JOB
      nf-submit export JOB -o FILE [--format xlsx|csv|json]

    Exit codes: 0 done, 1 the broker refused the request, 2 bad arguments,
    3 broker unreachable. */
#include "nf_client.h"
#include "nf_config.h"
#include "nf_log.h"
#include "nf_version.h"

#include <czmq.h>

enum { EXIT_OK = 0, EXIT_REFUSED = 1, EXIT_USAGE = 2, EXIT_UNREACHABLE = 3 };

static const char *s_usage =
    "Usage:\n"
    "  nf-submit NICHE [--sub-niche S] [--count N] [--top-n N] [--since YYYY-MM-DD]\n"
    "            [--until YYYY-MM-DD] [--region CC] [--lang L] [--min-views N]\n"
    "            [--format long|short|any] [--max-pages N] [--order O]\n"
    "            [--priority high|standard|bulk|background]\n"
    "  nf-submit status JOB\n"
    "  nf-submit list\n"
    "  nf-submit cancel JOB\n"
    "  nf-submit retry JOB\n"
    "  nf-submit export JOB -o FILE [--format xlsx|csv|json]\n"
    "Exit codes: 0 done, 1 refused by the broker, 2 bad arguments, 3 broker unreachable.\n\n";

/* Integer options map to ints on the wire, the rest to strings. */
static const struct {
    const char *flag;
    const char *key;
    bool is_int;
} s_opts[] = {
    {"--count", "count", true},         {"--top-n", "top_n", true},
    {"--min-views", "min_views", true}, {"--max-pages", "max_pages", true},
    {"--since", "since", false},        {"--until", "until", false},
    {"--region", "region", false},      {"--lang", "lang", false},
    {"--format", "format", false},      {"--order", "order", false},
};

static int
s_request (nf_client_t *client, const char *service, msgpack_sbuffer *body, nf_msg_t **reply)
{
    char err[300];
    if (nf_client_request (client, service, body->data, body->size, reply, err, sizeof err) != 0) {
        fprintf (stderr, "nf-submit: %s\n", err);
        return EXIT_UNREACHABLE;
    }
    bool ok = false;
    nf_mp_get_bool (nf_msg_root (*reply), "ok", &ok);
    if (!ok) {
        char *msg = nf_mp_dup_str (nf_msg_root (*reply), "error");
        fprintf (stderr, "nf-submit: %s\n", msg ? msg : "request refused");
        free (msg);
        return EXIT_REFUSED;
    }
    return EXIT_OK;
}

static void
s_print_obj (const msgpack_object *o)
{
    nf_buf_t b;
    nf_buf_init (&b);
    char err[64];
    if (o && nf_mp_to_json (o, &b, err, sizeof err) == 0)
        printf ("%s\n", b.data);
    nf_buf_free (&b);
}

static int
s_parse_job (const char *text, int64_t *job)
{
    char *end = NULL;
    long long v = text ? strtoll (text, &end, 10) : 0;
    if (!text || !*text || *end || v <= 0) {
        fprintf (stderr, "nf-submit: '%s' is not a job id\n%s", text ? text : "", s_usage);
        return -1;
    }
    *job = v;
    return 0;
}

int
main (int argc, char **argv)
{
    nf_config_t *config = nf_config_new ("nf-submit", NF_PROG_CLIENT);
    if (!config || nf_config_load (config, argc, argv) != 0)
        return EXIT_USAGE;
    if (nf_config_wants_version (config)) {
        printf ("nf-submit %s\n", NF_VERSION);
        nf_config_destroy (&config);
        return EXIT_OK;
    }
    int nargs = nf_config_argc (config);
    if (nf_config_wants_help (config) || nargs == 0) {
        fputs (s_usage, nargs ? stdout : stderr);
        nf_config_print_help (config, nargs ? stdout : stderr);
        int rc = nf_config_wants_help (config) ? EXIT_OK : EXIT_USAGE;
        nf_config_destroy (&config);
        return rc;
    }
    nf_config_apply_logging (config);
    const char *cmd = nf_config_arg (config, 0);
    nf_client_t *client = nf_client_new (nf_config_str (config, NF_CFG_BROKER_CLIENTS),
                                         nf_config_int (config, NF_CFG_TIMEOUT_MS),
                                         (size_t) nf_config_int (config, NF_CFG_MAX_FRAME));
    msgpack_sbuffer body;
    msgpack_sbuffer_init (&body);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &body, msgpack_sbuffer_write);
    nf_msg_t *reply = NULL;
    int rc = EXIT_USAGE;
    int64_t job = 0;
    if (!client) {
        fprintf (stderr, "nf-submit: cannot create a client socket\n");
        rc = EXIT_UNREACHABLE;
    }
    else if (strcmp (cmd, "status") == 0 || strcmp (cmd, "cancel") == 0
             || strcmp (cmd, "retry") == 0) {
        if (nargs == 2 && s_parse_job (nf_config_arg (config, 1), &job) == 0) {
            msgpack_pack_map (&pk, 2);
            nf_pk_kv_int (&pk, "v", NF_PROTO_VERSION);
            nf_pk_kv_int (&pk, "job_id", job);
            char service[16];
            snprintf (service, sizeof service, "nf.%s", cmd);
            rc = s_request (client, service, &body, &reply);
            if (rc == EXIT_OK && strcmp (cmd, "status") == 0) {
                const msgpack_object *root = nf_msg_root (reply);
                s_print_obj (nf_mp_get (root, "job"));
                s_print_obj (nf_mp_get (root, "counts"));
            }
            else if (rc == EXIT_OK) {
                char *status = nf_mp_dup_str (nf_msg_root (reply), "status");
                printf ("job %lld: %s\n", (long long) job, status ? status : "?");
                free (status);
            }
        }
        else if (nargs != 2)
            fprintf (stderr, "nf-submit: %s needs exactly one JOB\n%s", cmd, s_usage);
    }
    else if (strcmp (cmd, "list") == 0 && nargs == 1) {
        msgpack_pack_map (&pk, 1);
        nf_pk_kv_int (&pk, "v", NF_PROTO_VERSION);
        rc = s_request (client, "nf.list", &body, &reply);
        if (rc == EXIT_OK)
            s_print_obj (nf_mp_get (nf_msg_root (reply), "jobs"));
    }
    else if (strcmp (cmd, "export") == 0) {
        const char *out = NULL, *format = "xlsx";
        bool args_ok = nargs >= 2 && s_parse_job (nf_config_arg (config, 1), &job) == 0;
        for (int i = 2; args_ok && i < nargs; i++) {
            const char *a = nf_config_arg (config, i);
            const char *v = nf_config_arg (config, i + 1);
            if ((strcmp (a, "-o") == 0 || strcmp (a, "--output") == 0) && v)
                out = v, i++;
            else if (strcmp (a, "--format") == 0 && v)
                format = v, i++;
            else {
                fprintf (stderr, "nf-submit: export: unexpected '%s'\n%s", a, s_usage);
                args_ok = false;
            }
        }
        if (args_ok && !out)
            fprintf (stderr, "nf-submit: export needs -o FILE\n%s", s_usage);
        else if (args_ok) {
            msgpack_pack_map (&pk, 3);
            nf_pk_kv_int (&pk, "v", NF_PROTO_VERSION);
            nf_pk_kv_int (&pk, "job_id", job);
            nf_pk_kv_str (&pk, "format", format);
            rc = s_request (client, "nf.export", &body, &reply);
            const msgpack_object *content =
                rc == EXIT_OK ? nf_mp_get (nf_msg_root (reply), "content") : NULL;
            if (content && content->type == MSGPACK_OBJECT_BIN) {
                FILE *f = fopen (out, "wb");
                if (!f
                    || fwrite (content->via.bin.ptr, 1, content->via.bin.size, f)
                           != content->via.bin.size) {
                    fprintf (stderr, "nf-submit: cannot write %s\n", out);
                    rc = EXIT_REFUSED;
                }
                if (f)
                    fclose (f);
                if (rc == EXIT_OK)
                    printf ("%s\n", out);
            }
        }
    }
    else {
        /* A submission: NICHE then option flags. */
        const char *sub = NULL, *priority = NULL;
        const char *values[sizeof s_opts / sizeof s_opts[0]] = {0};
        bool args_ok = cmd[0] != '-';
        if (!args_ok)
            fprintf (stderr, "nf-submit: unknown flag '%s'\n%s", cmd, s_usage);
        for (int i = 1; args_ok && i < nargs; i++) {
            const char *a = nf_config_arg (config, i);
            const char *v = nf_config_arg (config, i + 1);
            bool known = false;
            if (strcmp (a, "--sub-niche") == 0 && v)
                sub = v, known = true;
            else if (strcmp (a, "--priority") == 0 && v)
                priority = v, known = true;
            for (size_t o = 0; !known && o < sizeof s_opts / sizeof s_opts[0]; o++)
                if (strcmp (a, s_opts[o].flag) == 0 && v) {
                    values[o] = v;
                    known = true;
                }
            if (!known) {
                fprintf (stderr, "nf-submit: unexpected argument '%s'%s\n%s", a,
                         a[0] == '-' && !v ? " (missing its value?)" : "", s_usage);
                args_ok = false;
            }
            i++;
        }
        for (size_t o = 0; args_ok && o < sizeof s_opts / sizeof s_opts[0]; o++)
            if (values[o] && s_opts[o].is_int) {
                char *end;
                strtoll (values[o], &end, 10);
                if (!*values[o] || *end) {
                    fprintf (stderr, "nf-submit: %s: '%s' is not a whole number\n", s_opts[o].flag,
                             values[o]);
                    args_ok = false;
                }
            }
        if (args_ok) {
            size_t nopt = 0;
            for (size_t o = 0; o < sizeof s_opts / sizeof s_opts[0]; o++)
                nopt += values[o] != NULL;
            msgpack_pack_map (&pk, 2 + (sub ? 1 : 0) + (priority ? 1 : 0) + 1);
            nf_pk_kv_int (&pk, "v", NF_PROTO_VERSION);
            nf_pk_kv_str (&pk, "niche", cmd);
            if (sub)
                nf_pk_kv_str (&pk, "sub_niche", sub);
            if (priority)
                nf_pk_kv_str (&pk, "priority", priority);
            nf_pk_str (&pk, "options");
            msgpack_pack_map (&pk, nopt);
            for (size_t o = 0; o < sizeof s_opts / sizeof s_opts[0]; o++)
                if (values[o]) {
                    if (s_opts[o].is_int)
                        nf_pk_kv_int (&pk, s_opts[o].key, strtoll (values[o], NULL, 10));
                    else
                        nf_pk_kv_str (&pk, s_opts[o].key, values[o]);
                }
            rc = s_request (client, "nf.submit", &body, &reply);
            int64_t id = 0;
            if (rc == EXIT_OK && nf_mp_get_int (nf_msg_root (reply), "job_id", &id))
                printf ("%lld\n", (long long) id);
        }
    }
    nf_msg_destroy (&reply);
    msgpack_sbuffer_destroy (&body);
    nf_client_destroy (&client);
    nf_config_destroy (&config);
    return rc;
}
