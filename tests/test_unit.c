/*  Unit tests of the nf library: proto codec, state table, util, config. */
#include "nf_config.h"
#include "nf_err.h"
#include "nf_log.h"
#include "nf_proto.h"
#include "nf_states.h"
#include "nf_test.h"
#include "nf_util.h"

#include <stdlib.h>
#include <unistd.h>

static void
test_buf_empty_repair (void)
{
    /* Repairing an empty string still leaves a terminated (empty) buffer. */
    nf_buf_t b;
    nf_buf_init (&b);
    nf_buf_utf8_repair (&b, "", 0);
    CHECK (b.data == NULL || (b.len == 0 && b.data[0] == 0));
    nf_buf_json_str (&b, "", 0);
    CHECK_STR (b.data, "\"\"");
    nf_buf_free (&b);
}

static void
test_task_roundtrip (void)
{
    nf_buf_t b;
    nf_buf_init (&b);
    msgpack_packer pk;
    nf_pk_init_buf (&pk, &b);
    msgpack_pack_map (&pk, 8);
    nf_pk_kv_int (&pk, "v", 1);
    nf_pk_kv_str (&pk, "service", "scrape");
    nf_pk_kv_str (&pk, "token", "tok-1");
    nf_pk_kv_int (&pk, "job_id", 42);
    nf_pk_kv_str (&pk, "video_id", "abc");
    nf_pk_kv_int (&pk, "attempt", 2);
    nf_pk_str (&pk, "job");
    const char *job = "{\"niche\":\"n\",\"options\":{\"count\":5}}";
    nf_json_to_mp (job, strlen (job), &pk);
    nf_pk_str (&pk, "input");
    const char *input = "{\"meta\":{\"title\":\"t\"}}";
    nf_json_to_mp (input, strlen (input), &pk);
    char err[256];
    nf_msg_t *msg = nf_msg_decode (b.data, b.len, 1 << 20, err, sizeof err);
    CHECK (msg != NULL);
    if (!msg)
        return;
    nf_task_t task;
    CHECK_INT (nf_task_decode (msg, &task, err, sizeof err), 0);
    CHECK_STR (task.service, "scrape");
    CHECK_STR (task.token, "tok-1");
    CHECK_INT (task.job_id, 42);
    CHECK_STR (task.video_id, "abc");
    CHECK_INT (task.attempt, 2);
    int64_t count = 0;
    CHECK (nf_mp_get_int (nf_mp_get (task.job, "options"), "count", &count) && count == 5);
    nf_buf_t json;
    nf_buf_init (&json);
    CHECK_INT (nf_mp_to_json (task.input, &json, err, sizeof err), 0);
    CHECK_STR (json.data, "{\"meta\":{\"title\":\"t\"}}");
    nf_buf_free (&json);
    nf_msg_destroy (&msg);
    CHECK (msg == NULL);
    nf_msg_destroy (&msg); /* idempotent */
    /* Every truncation of a valid body fails cleanly. */
    for (size_t n = 0; n < b.len; n++) {
        nf_msg_t *m = nf_msg_decode (b.data, n, 1 << 20, err, sizeof err);
        CHECK (m == NULL);
    }
    CHECK (nf_msg_decode (b.data, b.len, 10, err, sizeof err) == NULL);
    CHECK (strstr (err, "exceeds the limit") != NULL);
    nf_buf_free (&b);
}

/* Integers convert to JSON only within int64: past it, jansson and the
   broker's bigint columns cannot read them back (found by fuzz_proto). */
static void
test_json_int_range (void)
{
    char err[256] = "";
    nf_buf_t json;
    nf_buf_init (&json);
    msgpack_object o = {.type = MSGPACK_OBJECT_POSITIVE_INTEGER};
    o.via.u64 = (uint64_t) INT64_MAX;
    CHECK_INT (nf_mp_to_json (&o, &json, err, sizeof err), 0);
    CHECK_STR (json.data, "9223372036854775807");
    o.via.u64 = (uint64_t) INT64_MAX + 1;
    CHECK_INT (nf_mp_to_json (&o, &json, err, sizeof err), NF_ERR_PROTO);
    CHECK (strstr (err, "2^63") != NULL);
    nf_buf_free (&json);
    /* A jsonb number PostgreSQL prints as a 21-digit integer (1.5e20)
       keeps its value (as a real), never becomes {} (issue 23). */
    nf_buf_t mp;
    nf_buf_init (&mp);
    msgpack_packer pk;
    nf_pk_init_buf (&pk, &mp);
    const char *big = "{\"views\": 150000000000000000000, \"likes\": 7}";
    CHECK_INT (nf_json_to_mp (big, strlen (big), &pk), 0);
    msgpack_unpacked u;
    msgpack_unpacked_init (&u);
    CHECK (msgpack_unpack_next (&u, mp.data, mp.len, NULL) == MSGPACK_UNPACK_SUCCESS);
    const msgpack_object *views = nf_mp_get (&u.data, "views");
    CHECK (views && views->type == MSGPACK_OBJECT_FLOAT64 && views->via.f64 == 1.5e20);
    msgpack_unpacked_destroy (&u);
    nf_buf_reset (&mp);
    const char *small = "{\"views\": 1500}";
    CHECK_INT (nf_json_to_mp (small, strlen (small), &pk), 0);
    msgpack_unpacked_init (&u);
    CHECK (msgpack_unpack_next (&u, mp.data, mp.len, NULL) == MSGPACK_UNPACK_SUCCESS);
    views = nf_mp_get (&u.data, "views");
    CHECK (views && views->type == MSGPACK_OBJECT_POSITIVE_INTEGER && views->via.u64 == 1500);
    msgpack_unpacked_destroy (&u);
    nf_buf_free (&mp);
}

/* A stage's text column joins its JSON input as one more member, byte for
   byte (quotes, backslashes, newlines and non-ASCII as they are), or nil;
   an input that is not an object is refused. */
static void
test_json_with_text (void)
{
    nf_buf_t mp;
    nf_buf_init (&mp);
    msgpack_packer pk;
    nf_pk_init_buf (&pk, &mp);
    const char *input = "{\"meta\": {\"title\": \"T\"}, \"quality\": 71.5}";
    const char text[] = "say \"hi\"\\ \n caf\xc3\xa9";
    CHECK_INT (nf_json_to_mp_with (input, strlen (input), "transcript", text, sizeof text - 1, &pk),
               NF_OK);
    msgpack_unpacked u;
    msgpack_unpacked_init (&u);
    CHECK (msgpack_unpack_next (&u, mp.data, mp.len, NULL) == MSGPACK_UNPACK_SUCCESS);
    CHECK (u.data.type == MSGPACK_OBJECT_MAP && u.data.via.map.size == 3);
    const msgpack_object *t = nf_mp_get (&u.data, "transcript");
    CHECK (t && t->type == MSGPACK_OBJECT_STR && t->via.str.size == sizeof text - 1
           && memcmp (t->via.str.ptr, text, sizeof text - 1) == 0);
    const msgpack_object *meta = nf_mp_get (&u.data, "meta");
    CHECK (meta && meta->type == MSGPACK_OBJECT_MAP
           && nf_mp_is_str (nf_mp_get (meta, "title"), "T"));
    double q = 0;
    CHECK (nf_mp_get_num (&u.data, "quality", &q) && q == 71.5);
    msgpack_unpacked_destroy (&u);
    nf_buf_reset (&mp);
    CHECK_INT (nf_json_to_mp_with ("{}", 2, "clean_text", NULL, 0, &pk), NF_OK);
    msgpack_unpacked_init (&u);
    CHECK (msgpack_unpack_next (&u, mp.data, mp.len, NULL) == MSGPACK_UNPACK_SUCCESS);
    t = nf_mp_get (&u.data, "clean_text");
    CHECK (u.data.via.map.size == 1 && t && t->type == MSGPACK_OBJECT_NIL);
    msgpack_unpacked_destroy (&u);
    CHECK_INT (nf_json_to_mp_with ("[1]", 3, "transcript", "x", 1, &pk), NF_ERR_INVALID);
    CHECK_INT (nf_json_to_mp_with ("{", 1, "transcript", "x", 1, &pk), NF_ERR_INVALID);
    nf_buf_free (&mp);
}

static void
test_reply_roundtrip (void)
{
    nf_buf_t out, body;
    nf_buf_init (&out);
    nf_buf_init (&body);
    msgpack_packer pk;
    nf_pk_init_buf (&pk, &out);
    msgpack_pack_map (&pk, 1);
    nf_pk_kv_str (&pk, "transcript", "hi");
    nf_reply_encode (&body, "tok", NF_REPLY_OK, NULL, true, out.data, out.len, NULL, 0);
    char err[256];
    nf_msg_t *msg = nf_msg_decode (body.data, body.len, 1 << 20, err, sizeof err);
    nf_reply_t r;
    CHECK (msg && nf_reply_decode (msg, &r, err, sizeof err) == 0);
    CHECK_INT (r.status, NF_REPLY_OK);
    CHECK_STR (r.token, "tok");
    CHECK (r.output && nf_mp_get (r.output, "transcript"));
    nf_msg_destroy (&msg);
    nf_buf_reset (&body);
    nf_reply_encode (&body, "tok", NF_REPLY_ERROR, "boom", false, NULL, 0, NULL, 0);
    msg = nf_msg_decode (body.data, body.len, 1 << 20, err, sizeof err);
    CHECK (msg && nf_reply_decode (msg, &r, err, sizeof err) == 0);
    CHECK_INT (r.status, NF_REPLY_ERROR);
    CHECK_STR (r.error, "boom");
    CHECK (!r.retryable);
    nf_msg_destroy (&msg);
    nf_buf_free (&out);
    nf_buf_free (&body);
}

/* The value cap is proportional to the body: a 1 MB array of nils (one
   byte a value) is refused, naming the cap; an array with the same bytes
   in doubles (9 bytes a value) passes; small bodies keep the floor. */
static void
test_value_cap (void)
{
    char err[256];
    size_t n = 1 << 20;
    unsigned char *nils = malloc (n + 5);
    if (!nils)
        abort ();
    nils[0] = 0xdd; /* array32 of n nils */
    uint32_t count = (uint32_t) n;
    for (int b = 0; b < 4; b++)
        nils[1 + b] = (unsigned char) (count >> (24 - 8 * b));
    memset (nils + 5, 0xc0, n);
    CHECK (nf_mp_check (nils, n + 5, err, sizeof err) == NF_ERR_PROTO);
    CHECK (strstr (err, "more than 262145 values in a body of 1048581 bytes") != NULL);
    size_t m = n / 9;
    unsigned char *dbl = calloc (1, 5 + m * 9);
    if (!dbl)
        abort ();
    dbl[0] = 0xdd;
    for (int b = 0; b < 4; b++)
        dbl[1 + b] = (unsigned char) ((uint32_t) m >> (24 - 8 * b));
    for (size_t i = 0; i < m; i++)
        dbl[5 + i * 9] = 0xcb;
    CHECK (nf_mp_check (dbl, 5 + m * 9, err, sizeof err) == NF_OK);
    /* small bodies keep the floor: 4,000 nils in 4 KB pass */
    nils[1] = 0, nils[2] = 0, nils[3] = 0x0f, nils[4] = 0xa0;
    CHECK (nf_mp_check (nils, 5 + 4000, err, sizeof err) == NF_OK);
    free (nils);
    free (dbl);
}

static void
test_hostile_bytes (void)
{
    char err[256];
    /* array32 claiming 4 billion elements: refused before allocating */
    const char huge[] = "\x81\xa1v\xdd\xff\xff\xff\xff";
    CHECK (nf_msg_decode (huge, sizeof huge - 1, 1 << 20, err, sizeof err) == NULL);
    CHECK (strstr (err, "claims") != NULL);
    /* nesting deeper than the limit */
    char deep[100];
    memset (deep, 0x91, sizeof deep);
    deep[99] = 0xc0;
    CHECK (nf_msg_decode (deep, sizeof deep, 1 << 20, err, sizeof err) == NULL);
    /* ext types refused; reserved byte; trailing bytes; not a map */
    CHECK (nf_mp_check ("\xd4\x01\x00", 3, err, sizeof err) != 0);
    CHECK (nf_mp_check ("\xc1", 1, err, sizeof err) != 0);
    CHECK (nf_mp_check ("\x80\x80", 2, err, sizeof err) != 0);
    CHECK (nf_msg_decode ("\x01", 1, 100, err, sizeof err) == NULL);
    /* random bytes: decode or fail, never crash */
    srand (1);
    for (int i = 0; i < 20000; i++) {
        unsigned char buf[64];
        size_t n = (size_t) (rand () % 64);
        for (size_t j = 0; j < n; j++)
            buf[j] = (unsigned char) rand ();
        if (n)
            buf[0] = (unsigned char) (0x80 | (buf[0] & 0x0f));
        nf_msg_t *m = nf_msg_decode (buf, n, 1 << 20, err, sizeof err);
        if (m) {
            nf_task_t t;
            nf_reply_t r;
            nf_task_decode (m, &t, err, sizeof err);
            nf_reply_decode (m, &r, err, sizeof err);
            nf_msg_destroy (&m);
        }
    }
    CHECK (1);
}

static void
test_utf8 (void)
{
    nf_buf_t b;
    nf_buf_init (&b);
    nf_buf_json_str (&b, "a\"\\\n\x01\xff\xc3\xa9\0z", 10);
    CHECK_STR (b.data, "\"a\\\"\\\\\\u000a\\u0001\xef\xbf\xbd\xc3\xa9\xef\xbf\xbdz\"");
    CHECK (nf_utf8_valid ("\xc3\xa9\xf0\x9f\x8e\xac", 6));
    CHECK (!nf_utf8_valid ("\xc0\xaf", 2));         /* overlong */
    CHECK (!nf_utf8_valid ("\xed\xa0\x80", 3));     /* surrogate */
    CHECK (!nf_utf8_valid ("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    nf_buf_reset (&b);
    nf_buf_utf8_repair (&b, "ok\xe2\x82", 4);
    CHECK_STR (b.data, "ok\xef\xbf\xbd\xef\xbf\xbd");
    nf_buf_free (&b);
}

static void
test_backoff (void)
{
    CHECK_INT (nf_backoff_ms (1, 1000, 60000, 0.0), 500);
    CHECK_INT (nf_backoff_ms (1, 1000, 60000, 0.999999), 999);
    CHECK_INT (nf_backoff_ms (3, 1000, 60000, 0.0), 2000);
    CHECK_INT (nf_backoff_ms (30, 1000, 60000, 0.0), 30000); /* capped */
    CHECK (nf_backoff_ms (30, 1000, 60000, 0.5) <= 60000);
}

static void
test_states (void)
{
    size_t n;
    const nf_stage_t *stages = nf_stages (&n);
    CHECK_INT (n, 7);
    /* the chain is consistent: every stage consumes what an earlier one made */
    for (size_t i = 1; i < n; i++)
        CHECK_STR (stages[i].state_in, stages[i - 1].state_out);
    CHECK (nf_stage_find ("scrape") == &stages[1]);
    CHECK (nf_stage_find ("nope") == NULL);
    CHECK (nf_stage_next_job (NULL) == nf_stage_find ("discover"));
    CHECK (nf_stage_next_job (nf_stage_find ("discover")) == nf_stage_find ("analyze"));
    CHECK (nf_stage_next_job (nf_stage_find ("export")) == NULL);
    const char *states[8];
    size_t k = nf_stage_barrier (nf_stage_find ("analyze"), states, 8);
    CHECK_INT (k, 3);
    CHECK_STR (states[0], "CLEANED");
    CHECK_STR (states[2], "DISCOVERED");
    k = nf_stage_barrier (nf_stage_find ("export"), states, 8);
    CHECK_INT (k, 1);
    CHECK_STR (states[0], "OUTLIER");
    CHECK_INT (nf_stage_barrier (nf_stage_find ("discover"), states, 8), 0);
    /* every column a stage writes is in the catalog */
    for (size_t i = 0; i < n; i++) {
        char list[256];
        snprintf (list, sizeof list, "%s", stages[i].writes);
        for (char *c = strtok (list, ","); c; c = strtok (NULL, ","))
            CHECK (nf_column_find (c) != NULL);
    }
    CHECK (nf_stage_writes (nf_stage_find ("sanitize"), "quality"));
    CHECK (!nf_stage_writes (nf_stage_find ("sanitize"), "ai"));
    CHECK (nf_job_transition_ok ("pending", "queued"));
    CHECK (nf_job_transition_ok ("processing", "partial"));
    CHECK (!nf_job_transition_ok ("completed", "cancelling"));
    CHECK (!nf_job_transition_ok ("cancelled", "completed"));
    CHECK (nf_job_status_final ("failed") && !nf_job_status_final ("running"));
    CHECK_INT (nf_priority_parse ("bulk"), 2);
    CHECK_INT (nf_priority_parse ("urgent"), -1);
    /* the job status machine: every move names a known status, every
       status but the final ones can be cancelled or failed, and the status
       sets the broker's SQL uses */
    size_t nj;
    const nf_job_status_t *jobs = nf_job_statuses (&nj);
    CHECK_INT (nj, 9);
    for (size_t i = 0; i < nj; i++) {
        char list[128];
        snprintf (list, sizeof list, "%s", jobs[i].to);
        for (char *t = strtok (list, " "); t; t = strtok (NULL, " "))
            CHECK (nf_job_status_valid (t));
        CHECK (jobs[i].about && *jobs[i].about);
        if (!(jobs[i].flags & NF_JOBS_FINAL) && strcmp (jobs[i].name, NF_JOB_CANCELLING) != 0)
            CHECK (nf_job_transition_ok (jobs[i].name, NF_JOB_CANCELLING));
    }
    char set[256];
    CHECK_INT (nf_job_status_set (NF_JOBS_CLAIM_VIDEO, set, sizeof set), 2);
    CHECK_STR (set, "{running,processing}");
    CHECK_INT (nf_job_status_set (NF_JOBS_ACTIVE, set, sizeof set), 4);
    CHECK_STR (set, "{queued,running,processing,cancelling}");
    CHECK_INT (nf_job_status_set (NF_JOBS_FINAL, set, sizeof set), 4);
    CHECK_STR (set, "{completed,partial,failed,cancelled}");
    CHECK_INT (nf_job_status_set (NF_JOBS_FINAL | NF_JOBS_ACTIVE, set, sizeof set), 0);
    CHECK_STR (set, "{}");
}

/* A log line of outside text stays one line: newlines and escape
   sequences are written escaped (issue 23). */
static void
test_log_escape (void)
{
    char path[] = "/tmp/nf-log-XXXXXX";
    int fd = mkstemp (path);
    CHECK (fd >= 0);
    fflush (stderr);
    int saved = dup (2);
    dup2 (fd, 2);
    nf_log_init ("t", NF_LOG_INFO, false);
    nf_info ("title: %s", "evil\n2026-01-01T00:00:00.000Z error forged\r\x1b[2J\x7f caf\xc3\xa9");
    fflush (stderr);
    dup2 (saved, 2);
    close (saved);
    char text[512] = "";
    ssize_t n = pread (fd, text, sizeof text - 1, 0);
    close (fd);
    unlink (path);
    CHECK (n > 0);
    text[n > 0 ? n : 0] = 0;
    CHECK (strchr (text, '\n') == text + strlen (text) - 1); /* one line */
    CHECK (strstr (text, "evil\\n2026-01-01T00:00:00.000Z error forged\\r\\x1b[2J\\x7f caf\xc3\xa9")
           != NULL);
    CHECK (strchr (text, 0x1b) == NULL);
}

/* nf_err: every code has its own sentence, and the numbers stay put. */
static void
test_errors (void)
{
    CHECK_INT (NF_OK, 0);
    CHECK_INT (NF_ERR_DB, -1);
    CHECK_INT (NF_ERR_DB_DATA, -2);
    CHECK_STR (nf_strerror (NF_ERR_DB_DATA), "the database refused the data");
    for (int a = NF_ERR_LAST; a <= NF_OK; a++) {
        CHECK (strcmp (nf_strerror ((nf_err_t) a), "unknown error") != 0);
        for (int b = NF_ERR_LAST; b < a; b++)
            CHECK (strcmp (nf_strerror ((nf_err_t) a), nf_strerror ((nf_err_t) b)) != 0);
    }
    CHECK_STR (nf_strerror ((nf_err_t) (NF_ERR_LAST - 1)), "unknown error");
}

static void
test_config (void)
{
    setenv ("NF_LEASE_MS", "1234", 1);
    nf_config_t *c = nf_config_new ("t", NF_PROG_BROKER);
    char *argv[] = {"t", "--max-attempts", "7", "--flush-ms=9", "pos", NULL};
    CHECK_INT (nf_config_load (c, 5, argv), 0);
    CHECK_INT (nf_config_int (c, NF_CFG_LEASE_MS), 1234);  /* environment */
    CHECK_INT (nf_config_int (c, NF_CFG_MAX_ATTEMPTS), 7); /* flag */
    CHECK_INT (nf_config_int (c, NF_CFG_FLUSH_MS), 9);
    CHECK_INT (nf_config_int (c, NF_CFG_HEARTBEAT_MS), 1000); /* default */
    CHECK_INT (nf_config_argc (c), 1);
    CHECK_STR (nf_config_arg (c, 0), "pos");
    char *bad[] = {"t", "--max-attempts", "zero", NULL};
    CHECK_INT (nf_config_load (c, 3, bad), NF_ERR_INVALID);
    nf_config_destroy (&c);
    CHECK (c == NULL);
    nf_config_destroy (&c);
    unsetenv ("NF_LEASE_MS");
}

int
main (void)
{
    test_buf_empty_repair ();
    test_task_roundtrip ();
    test_json_int_range ();
    test_json_with_text ();
    test_reply_roundtrip ();
    test_hostile_bytes ();
    test_value_cap ();
    test_utf8 ();
    test_backoff ();
    test_states ();
    test_config ();
    test_errors ();
    test_log_escape ();
    return NF_TEST_END ();
}
