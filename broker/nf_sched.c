/*  nf_sched: the scheduler and the leases, on the office thread's store
    and connection (nf_office.c; the orphan release on the cycle thread's,
    before a cycle's claims):

    * nf_store_tick, every TICK_MS or sooner after a request: cancellations
      completed, admissions by priority up to max_active_jobs, videos
      whose attempts ran out without a reply (the sweep), jobs with too
      few READY videos to export, job stages whose attempts ran out;
    * nf_store_release_owned at start-up and nf_store_release_orphans after
      a reconnect: leases this broker held that nobody holds any more;
    * nf_store_waiting for the metrics: claimable tasks per stage.

    Each statement is its own transaction: a tick does little, a few
    indexed statements, and none of it has to be atomic with the rest. */
#include "nf_log.h"
#include "nf_store_int.h"
#include "nf_util.h"

#include <stdlib.h>
#include <string.h>

nf_err_t
nf_store_release_owned (nf_store_t *self)
{
    const char *params[] = {self->owner};
    PGresult *a = nf_db_exec (self->db, "release_owned_videos",
                              "UPDATE nf_videos SET " NF_SQL_LEASE_CLEAR
                              ", attempts = greatest(attempts - 1, 0) "
                              "WHERE lease_owner = $1",
                              1, params);
    PGresult *b = a ? nf_db_exec (self->db, "release_owned_jobs",
                                  "UPDATE nf_jobs SET " NF_SQL_LEASE_CLEAR
                                  ", attempts = greatest(attempts - 1, "
                                  "0) WHERE lease_owner = $1",
                                  1, params)
                    : NULL;
    if (a && b && (atoi (PQcmdTuples (a)) || atoi (PQcmdTuples (b))))
        nf_info ("released %s video and %s job leases held by '%s' before a restart",
                 PQcmdTuples (a), PQcmdTuples (b), self->owner);
    int rc = a && b ? NF_OK : NF_ERR_DB;
    PQclear (a);
    PQclear (b);
    return rc;
}

nf_err_t
nf_store_release_orphans (nf_store_t *self, const char *held)
{
    const char *params[] = {self->owner, held};
    PGresult *res = nf_db_exec (
        self->db, "release_orphans",
        "WITH v AS (UPDATE nf_videos SET " NF_SQL_LEASE_CLEAR
        ", attempts = greatest(attempts - 1, 0) "
        "WHERE lease_owner = $1 AND NOT (lease_token = ANY($2::uuid[])) RETURNING 1), j AS "
        "(UPDATE nf_jobs SET " NF_SQL_LEASE_CLEAR ", attempts = greatest(attempts - 1, 0) WHERE "
        "lease_owner = $1 AND NOT (lease_token = ANY($2::uuid[])) RETURNING 1) SELECT (SELECT "
        "count(*) FROM v) + (SELECT count(*) FROM j)",
        2, params);
    if (!res)
        return NF_ERR_DB;
    if (atoi (PQgetvalue (res, 0, 0)))
        nf_warn ("released %s leases claimed before the connection was lost",
                 PQgetvalue (res, 0, 0));
    PQclear (res);
    return 0;
}

/* Run a statement whose rows are (job_id) moved FROM -> TO; emit events. */
static nf_err_t
s_tick_moves (nf_store_t *self, const char *name, const char *sql, int nparams,
              const char *const *params, const char *from, const char *to, const char *reason)
{
    PGresult *res = nf_db_exec (self->db, name, sql, nparams, params);
    if (!res)
        return NF_ERR_DB;
    for (int i = 0; i < PQntuples (res); i++)
        nf_store_event (self, strtoll (PQgetvalue (res, i, 0), NULL, 10), NULL, from, to, "job",
                        reason);
    PQclear (res);
    nf_store_events_flush (self, true);
    return 0;
}

/* Cancelling jobs whose in-flight work is dropped: cancelled; one whose
   discovery still runs (its lease kept by nf.cancel) once its answer is
   applied or its lease expired. */
static nf_err_t
s_tick_cancelled (nf_store_t *self)
{
    return s_tick_moves (
        self, "tick_cancelled",
        "WITH u AS (UPDATE nf_jobs SET status = '" NF_JOB_CANCELLED "', finished_at = now(), "
        "updated_at = now(), " NF_SQL_LEASE_CLEAR " WHERE status = '" NF_JOB_CANCELLING "' "
        "AND (lease_token IS NULL OR lease_expires < now()) RETURNING id), h AS (INSERT INTO "
        "nf_job_history (job_id, from_status, to_status, "
        "reason) SELECT id, '" NF_JOB_CANCELLING "', '" NF_JOB_CANCELLED "', 'in-flight work "
        "dropped' FROM u) SELECT id FROM u",
        0, NULL, NF_JOB_CANCELLING, NF_JOB_CANCELLED, "in-flight work dropped");
}

/* Pending jobs admitted by priority while fewer than max_active_jobs are active. */
static nf_err_t
s_tick_admit (nf_store_t *self)
{
    char limit[24], active[256];
    snprintf (limit, sizeof limit, "%lld", (long long) self->opts.max_active_jobs);
    nf_job_status_set (NF_JOBS_ACTIVE, active, sizeof active);
    const char *ap[] = {limit, active};
    return s_tick_moves (
        self, "tick_admit",
        "WITH a AS (SELECT id FROM nf_jobs WHERE status = '" NF_JOB_PENDING "' ORDER BY "
        "priority, id LIMIT greatest($1::int - (SELECT count(*) FROM nf_jobs WHERE status = "
        "ANY($2::text[])), 0) FOR UPDATE SKIP LOCKED), u AS (UPDATE nf_jobs j SET status = "
        "'" NF_JOB_QUEUED "', updated_at = now() FROM a WHERE j.id = a.id RETURNING j.id), h AS "
        "(INSERT INTO nf_job_history (job_id, from_status, to_status, reason) SELECT id, "
        "'" NF_JOB_PENDING "', '" NF_JOB_QUEUED "', 'admitted' FROM u) SELECT id FROM u",
        2, ap, NF_JOB_PENDING, NF_JOB_QUEUED, "admitted");
}

/* Videos of stage Q whose attempts ran out without a reply (a worker
   crashing on them): FAILED. */
static nf_err_t
s_tick_sweep (nf_store_t *self, nf_sql_t *q)
{
    const char *params[] = {q->stage->state_in, self->max_attempts, q->stage->service};
    PGresult *res = nf_db_exec (self->db, q->name[NF_SQL_SWEEP], q->text[NF_SQL_SWEEP], 3, params);
    if (!res)
        return NF_ERR_DB;
    for (int r = 0; r < PQntuples (res); r++)
        nf_store_event (self, strtoll (PQgetvalue (res, r, 0), NULL, 10), PQgetvalue (res, r, 1),
                        q->stage->state_in, NF_STATE_FAILED, q->stage->service,
                        PQgetvalue (res, r, 2));
    PQclear (res);
    nf_store_events_flush (self, true);
    return 0;
}

/* Jobs at barrier stage Q (one that needs min_ready) whose videos have all
   arrived and are too few: failed, with the reason. */
static nf_err_t
s_tick_too_few (nf_store_t *self, nf_sql_t *q)
{
    char min_ready[24], active[256];
    snprintf (min_ready, sizeof min_ready, "%lld", (long long) self->opts.min_ready);
    nf_job_status_set (NF_JOBS_CLAIM_JOB, active, sizeof active);
    const char *params[] = {q->stage->service, q->holds, q->barrier, min_ready, active};
    PGresult *res = nf_db_exec (
        self->db, "tick_too_few",
        "SELECT j.id, (SELECT count(*) FROM nf_videos v WHERE v.job_id = j.id AND v.state "
        "= ANY($2::text[])) FROM nf_jobs j WHERE j.phase = $1 AND j.status = ANY($5::text[]) AND "
        "NOT EXISTS "
        "(SELECT 1 FROM nf_videos v WHERE v.job_id = j.id AND v.state = ANY($3::text[])) AND "
        "(SELECT count(*) FROM nf_videos v WHERE v.job_id = j.id AND v.state = ANY($2::text[])) "
        "< $4::int",
        5, params);
    if (!res)
        return NF_ERR_DB;
    for (int r = 0; r < PQntuples (res); r++) {
        char reason[200];
        snprintf (reason, sizeof reason,
                  "only %s videos reached %s, at least %lld needed; nf.retry re-runs its FAILED "
                  "videos",
                  PQgetvalue (res, r, 1), q->stage->state_in, (long long) self->opts.min_ready);
        nf_store_job_status (self, strtoll (PQgetvalue (res, r, 0), NULL, 10), NF_JOB_FAILED,
                             reason);
    }
    PQclear (res);
    nf_store_events_flush (self, true);
    return 0;
}

/* Job stages whose attempts ran out without a reply: the job failed. */
static nf_err_t
s_tick_job_exhausted (nf_store_t *self)
{
    char active[256];
    nf_job_status_set (NF_JOBS_CLAIM_JOB, active, sizeof active);
    const char *xp[] = {self->max_attempts, active};
    PGresult *res = nf_db_exec (self->db, "tick_job_exhausted",
                                "SELECT id, phase, coalesce(last_error, 'attempts exhausted') "
                                "FROM nf_jobs WHERE status = ANY($2::text[]) AND attempts >= "
                                "$1::int AND (lease_token IS NULL OR lease_expires < now())",
                                2, xp);
    if (!res)
        return NF_ERR_DB;
    for (int r = 0; r < PQntuples (res); r++) {
        char reason[600];
        snprintf (reason, sizeof reason, "stage %s failed: %.500s", PQgetvalue (res, r, 1),
                  PQgetvalue (res, r, 2));
        nf_store_job_status (self, strtoll (PQgetvalue (res, r, 0), NULL, 10), NF_JOB_FAILED,
                             reason);
    }
    PQclear (res);
    nf_store_events_flush (self, true);
    return 0;
}

nf_err_t
nf_store_tick (nf_store_t *self)
{
    if (s_tick_cancelled (self) != 0 || s_tick_admit (self) != 0)
        return NF_ERR_DB;
    for (size_t i = 0; i < self->nstages; i++) {
        nf_sql_t *q = &self->sql[i];
        int rc = q->stage->scope == NF_SCOPE_VIDEO ? s_tick_sweep (self, q)
                 : q->stage->needs_min_ready       ? s_tick_too_few (self, q)
                                                   : 0;
        if (rc != 0)
            return NF_ERR_DB;
    }
    return s_tick_job_exhausted (self);
}

nf_err_t
nf_store_waiting (nf_store_t *self, nf_waiting_fn *fn, void *arg)
{
    char videos[256], jobs[256];
    nf_job_status_set (NF_JOBS_CLAIM_VIDEO, videos, sizeof videos);
    nf_job_status_set (NF_JOBS_CLAIM_JOB, jobs, sizeof jobs);
    const char *params[] = {videos, jobs};
    PGresult *res = nf_db_exec (
        self->db, "waiting",
        "SELECT 'v', v.state, count(*) FROM nf_videos v JOIN nf_jobs j ON j.id = v.job_id WHERE "
        "j.status = ANY($1::text[]) AND v.next_attempt_at <= now() AND (v.lease_token IS NULL "
        "OR v.lease_expires < now()) GROUP BY v.state UNION ALL SELECT 'j', phase, count(*) FROM "
        "nf_jobs WHERE status = ANY($2::text[]) AND next_attempt_at <= now() AND (lease_token "
        "IS NULL OR lease_expires < now()) GROUP BY phase",
        2, params);
    if (!res)
        return NF_ERR_DB;
    size_t nst;
    const nf_stage_t *stages = nf_stages (&nst);
    for (int r = 0; r < PQntuples (res); r++) {
        const char *what = PQgetvalue (res, r, 1);
        int64_t n = strtoll (PQgetvalue (res, r, 2), NULL, 10);
        bool video = PQgetvalue (res, r, 0)[0] == 'v';
        for (size_t s = 0; s < nst; s++)
            if (video ? stages[s].scope == NF_SCOPE_VIDEO && stages[s].state_in
                            && strcmp (stages[s].state_in, what) == 0
                      : stages[s].scope == NF_SCOPE_JOB && strcmp (stages[s].service, what) == 0)
                fn (stages[s].service, n, arg);
    }
    PQclear (res);
    return 0;
}

/* ---- retention ------------------------------------------------------------------ */

#define S_STR2(x)    #x
#define S_STR(x)     S_STR2 (x)
#define PRUNE_VIDEOS 500  /* videos whose texts one statement drops */
#define PRUNE_ROWS   2000 /* history or log rows one statement deletes */

/* One batch statement of job JOB (or, JOB NULL, of no job); the rows it
   touched, or -1. */
static int64_t
s_prune_batch (nf_store_t *self, const char *name, const char *sql, const char *job)
{
    char days[24];
    snprintf (days, sizeof days, "%lld", (long long) self->opts.retain_days);
    const char *params[] = {days, job};
    PGresult *res = nf_db_exec (self->db, name, sql, job ? 2 : 1, params);
    if (!res)
        return -1;
    int64_t n = strtoll (PQcmdTuples (res), NULL, 10);
    PQclear (res);
    return n;
}

/* Every batch re-checks that job $2 is still finished past the retention:
   nothing of a live job is touched. */
#define S_STILL_OLD                                                                  \
    "EXISTS (SELECT 1 FROM nf_jobs WHERE id = $2::bigint AND finished_at < now() - " \
    "make_interval(days => $1::int))"

nf_err_t
nf_store_prune (nf_store_t *self, int64_t budget_ms, nf_prune_stats_t *st, bool *more)
{
    *more = false;
    if (self->opts.retain_days <= 0)
        return NF_OK;
    char days[24];
    snprintf (days, sizeof days, "%lld", (long long) self->opts.retain_days);
    const char *params[] = {days};
    /* The oldest finished job past the retention, marked as being pruned. */
    PGresult *res = nf_db_exec (
        self->db, "prune_pick",
        "UPDATE nf_jobs SET pruned_at = coalesce(pruned_at, now()) WHERE id = (SELECT id FROM "
        "nf_jobs WHERE NOT pruned AND finished_at IS NOT NULL AND finished_at < now() - "
        "make_interval(days => $1::int) ORDER BY finished_at LIMIT 1) RETURNING id",
        1, params);
    if (!res)
        return NF_ERR_DB;
    char job[24] = "";
    if (PQntuples (res) == 1)
        snprintf (job, sizeof job, "%s", PQgetvalue (res, 0, 0));
    PQclear (res);
    int64_t start = nf_clock_ms ();
    if (!*job) { /* the log lines of no job */
        int64_t n = s_prune_batch (
            self, "prune_orphan_logs",
            "DELETE FROM nf_processing_log WHERE id IN (SELECT id FROM nf_processing_log WHERE "
            "job_id IS NULL AND at < now() - make_interval(days => $1::int) LIMIT " S_STR (
                PRUNE_ROWS) ")",
            NULL);
        if (n < 0)
            return NF_ERR_DB;
        st->logs += (uint64_t) n;
        *more = n == PRUNE_ROWS;
        return NF_OK;
    }
    /* The three kinds of rows, each a batch a round until one comes back
       short: what is left of that kind is gone. */
    static const struct {
        const char *name, *sql;
        int64_t batch;
    } kinds[] = {
        {"prune_texts",
         "UPDATE nf_videos SET transcript = NULL, clean_text = NULL WHERE job_id = $2::bigint AND "
         "video_id IN (SELECT video_id FROM nf_videos WHERE job_id = $2::bigint AND (transcript IS "
         "NOT NULL OR clean_text IS NOT NULL) LIMIT " S_STR (PRUNE_VIDEOS) ") AND " S_STILL_OLD,
         PRUNE_VIDEOS},
        {"prune_history",
         "DELETE FROM nf_video_history WHERE id IN (SELECT id FROM nf_video_history WHERE job_id = "
         "$2::bigint LIMIT " S_STR (PRUNE_ROWS) ") AND " S_STILL_OLD,
         PRUNE_ROWS},
        {"prune_logs",
         "DELETE FROM nf_processing_log WHERE id IN (SELECT id FROM nf_processing_log WHERE job_id "
         "= $2::bigint LIMIT " S_STR (PRUNE_ROWS) ") AND " S_STILL_OLD,
         PRUNE_ROWS},
    };
    uint64_t *counts[] = {&st->texts, &st->history, &st->logs};
    bool left[] = {true, true, true};
    while ((left[0] || left[1] || left[2]) && nf_clock_ms () - start < budget_ms)
        for (int k = 0; k < 3; k++) {
            if (!left[k])
                continue;
            int64_t n = s_prune_batch (self, kinds[k].name, kinds[k].sql, job);
            if (n < 0)
                return NF_ERR_DB;
            *counts[k] += (uint64_t) n;
            left[k] = n == kinds[k].batch;
        }
    if (left[0] || left[1] || left[2]) {
        *more = true;
        return NF_OK;
    }
    const char *jp[] = {days, job};
    res = nf_db_exec (self->db, "prune_done",
                      "UPDATE nf_jobs SET pruned = true WHERE id = $2::bigint AND " S_STILL_OLD, 2,
                      jp);
    if (!res)
        return NF_ERR_DB;
    if (atoi (PQcmdTuples (res)) == 1) {
        st->jobs++;
        nf_info ("retention: job %s pruned (finished over %s days ago): transcripts, video "
                 "history and log gone; its results and exports stay",
                 job, days);
    }
    PQclear (res);
    *more = true; /* another job may be due */
    return NF_OK;
}
