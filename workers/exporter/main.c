/*  nf-exporter: the `export` stage (per job), READY to EXPORTED. Builds the
    workbook, CSV and JSON with nf_export and returns them in the reply; the
    broker stores them in nf_exports, so any node can serve them through
    nf.export. With NF_OUTPUT_DIR set, the files are also written there as
    <niche>-<job>.{xlsx,csv,json}, or <niche>-<job>-<n>.* with the first n
    from 2 for which none of the three exists, so an earlier run's files
    (a fresh database numbers its jobs from 1 again) or an earlier export
    of a retried job are never overwritten. Each is written to a temporary
    name, then renamed, so a reader never sees half a file; its mode is
    0666 less the umask, as any file the user makes. */
#define _GNU_SOURCE /* memmem */
#include "nf_export.h"
#include "nf_http.h"
#include "nf_log.h"
#include "nf_worker.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    const char *output_dir; /* NF_OUTPUT_DIR ("" = none); borrowed from the config */
    mode_t mode;            /* of the files written there: 0666 & ~umask */
    const char *img_url;    /* NF_YOUTUBE_IMG_URL ("" = no thumbnails) */
    nf_http_t *http;        /* for the thumbnails, or NULL */
} s_opts_t;

#define THUMB_MAX_BYTES (2 << 20) /* an mqdefault picture is about 10 kB */

static int
s_init (nf_config_t *config, void *arg)
{
    s_opts_t *o = (s_opts_t *) arg;
    o->output_dir = nf_config_str (config, NF_CFG_OUTPUT_DIR);
    mode_t mask = umask (0);
    umask (mask);
    o->mode = 0666 & ~mask;
    struct stat st;
    if (*o->output_dir && (stat (o->output_dir, &st) != 0 || !S_ISDIR (st.st_mode))) {
        fprintf (stderr, "nf-exporter: NF_OUTPUT_DIR '%s' is not a folder\n", o->output_dir);
        return -1;
    }
    o->img_url = nf_config_str (config, NF_CFG_YOUTUBE_IMG_URL);
    if (*o->img_url) {
        nf_http_opts_t h = {.timeout_ms = (long) nf_config_int (config, NF_CFG_HTTP_TIMEOUT_MS),
                            .max_bytes = THUMB_MAX_BYTES,
                            .retries = 1,
                            .burst = 4,
                            .max_wait_ms = 2000,
                            .backoff_base_ms = 200,
                            .proxies = nf_config_str (config, NF_CFG_PROXIES),
                            .user_agents = "",
                            .cache_dir = ""};
        char err[256];
        o->http = nf_http_new (&h, err, sizeof err);
        if (!o->http) {
            fprintf (stderr, "nf-exporter: %s\n", err);
            return -1;
        }
    }
    return 0;
}

/* The thumbnail of each outlier of VIDEOS that is a YouTube video (its
   link a /watch?v= one) into IMAGES (NIMAGES of them; the bodies in
   BODIES, the caller frees). A picture that cannot be fetched is left
   out, counted in *MISSED: the row is written without it. */
static size_t
s_thumbnails (s_opts_t *o, const msgpack_object *videos, nf_export_image_t *images,
              nf_http_resp_t *bodies, char **ids, size_t *missed)
{
    size_t n = 0;
    *missed = 0;
    for (uint32_t i = 0; o->http && i < videos->via.array.size; i++) {
        const msgpack_object *v = &videos->via.array.ptr[i];
        char *id = nf_mp_dup_str (v, "video_id");
        const char *url;
        size_t url_len;
        bool youtube = nf_mp_get_str (nf_mp_get (v, "meta"), "url", &url, &url_len)
                       && memmem (url, url_len, "/watch?v=", 9);
        bool safe =
            id && *id && strlen (id) < 32
            && strspn (id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
                   == strlen (id);
        if (!youtube || !safe) {
            free (id);
            continue;
        }
        char where[600];
        snprintf (where, sizeof where, "%s/vi/%s/mqdefault.jpg", o->img_url, id);
        nf_http_resp_init (&bodies[n]);
        if (nf_http_get (o->http, where, &bodies[n]) != NF_HTTP_OK || bodies[n].body.len < 4) {
            nf_warn ("thumbnail of %s: %s", id, bodies[n].error[0] ? bodies[n].error : "empty");
            nf_http_resp_free (&bodies[n]);
            free (id);
            (*missed)++;
            continue;
        }
        ids[n] = id;
        images[n] = (nf_export_image_t){id, (const unsigned char *) bodies[n].body.data,
                                        bodies[n].body.len};
        n++;
    }
    return n;
}

/* Write DATA to DIR/NAME with MODE through a temporary file. 0 or -1 with
   errno. */
static int
s_write_file (const char *dir, const char *name, mode_t mode, const nf_buf_t *data)
{
    char tmp[4096], path[4096];
    snprintf (path, sizeof path, "%s/%s", dir, name);
    snprintf (tmp, sizeof tmp, "%s/.%s.XXXXXX", dir, name);
    int fd = mkstemp (tmp);
    if (fd < 0)
        return -1;
    size_t off = 0;
    while (off < data->len) {
        ssize_t n = write (fd, data->data + off, data->len - off);
        if (n < 0) {
            int e = errno;
            close (fd);
            unlink (tmp);
            errno = e;
            return -1;
        }
        off += (size_t) n;
    }
    if (fchmod (fd, mode) != 0 || fsync (fd) != 0 || close (fd) != 0 || rename (tmp, path) != 0) {
        int e = errno;
        unlink (tmp);
        errno = e;
        return -1;
    }
    return 0;
}

/* The first copy number (1: the plain name, then 2, 3, ...) for which no
   file of the three formats FMT exists in DIR. */
static int
s_free_copy (const char *dir, const char *niche, int64_t job_id, const char *const fmt[3])
{
    for (int copy = 1;; copy++) {
        bool taken = false;
        for (int i = 0; i < 3 && !taken; i++) {
            char *name = nf_export_file_name (niche, job_id, copy, fmt[i]);
            char path[4096];
            snprintf (path, sizeof path, "%s/%s", dir, name ? name : "");
            taken = name && access (path, F_OK) == 0;
            free (name);
        }
        if (!taken || copy == 100000)
            return copy;
    }
}

static void
s_stage (const nf_task_t *task, nf_result_t *result, void *arg)
{
    s_opts_t *o = (s_opts_t *) arg;
    nf_export_files_t files;
    char err[512];
    const char *tmpdir = getenv ("TMPDIR");
    const msgpack_object *in = nf_mp_get (task->input, "videos");
    size_t cap = in && in->type == MSGPACK_OBJECT_ARRAY ? in->via.array.size : 0, missed = 0;
    nf_export_image_t *images = calloc (cap + 1, sizeof *images);
    nf_http_resp_t *bodies = calloc (cap + 1, sizeof *bodies);
    char **ids = calloc (cap + 1, sizeof *ids);
    if (!images || !bodies || !ids)
        abort ();
    size_t nimages = cap ? s_thumbnails (o, in, images, bodies, ids, &missed) : 0;
    int built =
        nf_export_build (task, tmpdir ? tmpdir : "", images, nimages, &files, err, sizeof err);
    for (size_t i = 0; i < nimages; i++) {
        nf_http_resp_free (&bodies[i]);
        free (ids[i]);
    }
    free (images);
    free (bodies);
    free (ids);
    if (missed)
        nf_warn ("job %lld: %zu thumbnails could not be fetched; their rows have none",
                 (long long) task->job_id, missed);
    if (built != 0) {
        nf_result_error (result, true, "export failed: %s", err);
        return;
    }
    const char *const fmt[] = {"xlsx", "csv", "json"};
    const nf_buf_t *const data[] = {&files.xlsx, &files.csv, &files.json};
    if (*o->output_dir) {
        char *niche = nf_mp_dup_str (task->job, "niche");
        int copy = s_free_copy (o->output_dir, niche, task->job_id, fmt);
        for (int i = 0; i < 3; i++) {
            char *name = nf_export_file_name (niche, task->job_id, copy, fmt[i]);
            if (!name || s_write_file (o->output_dir, name, o->mode, data[i]) != 0) {
                nf_result_error (result, true, "cannot write %s/%s: %s", o->output_dir,
                                 name ? name : "?", strerror (errno));
                free (name);
                free (niche);
                nf_export_files_free (&files);
                return;
            }
            nf_info ("job %lld: wrote %s/%s (%zu bytes)", (long long) task->job_id, o->output_dir,
                     name, data[i]->len);
            free (name);
        }
        free (niche);
    }
    const msgpack_object *videos = nf_mp_get (task->input, "videos");
    uint32_t n = videos->via.array.size; /* nf_export_build checked the array */
    msgpack_packer pk;
    nf_result_output_packer (result, &pk);
    msgpack_pack_map (&pk, 2);
    nf_pk_str (&pk, "videos");
    msgpack_pack_array (&pk, n);
    for (uint32_t i = 0; i < n; i++) {
        const char *id;
        size_t len;
        msgpack_pack_map (&pk, 2);
        nf_pk_str (&pk, "video_id");
        if (nf_mp_get_str (&videos->via.array.ptr[i], "video_id", &id, &len))
            nf_pk_strn (&pk, id, len);
        else
            msgpack_pack_nil (&pk);
        nf_pk_kv_str (&pk, "status", "ok");
    }
    nf_pk_str (&pk, "files");
    msgpack_pack_map (&pk, 3);
    for (int i = 0; i < 3; i++) {
        nf_pk_str (&pk, fmt[i]);
        msgpack_pack_bin (&pk, data[i]->len);
        msgpack_pack_bin_body (&pk, data[i]->data, data[i]->len);
    }
    nf_info ("job %lld: exported %u outliers (xlsx %zu bytes)", (long long) task->job_id, n,
             files.xlsx.len);
    nf_export_files_free (&files);
}

int
main (int argc, char **argv)
{
    s_opts_t opts = {""};
    int rc = nf_worker_main (argc, argv, "nf-exporter", "export", s_init, s_stage, &opts);
    nf_http_destroy (&opts.http);
    return rc;
}
