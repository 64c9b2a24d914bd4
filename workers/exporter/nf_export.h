/*  nf_export: the deliverables of a job, built from the export task.

    The task input of the `export` stage holds the job's READY videos (with
    meta, channel, scores, composite, rank, quality and AI content), the
    funnel, the counters and the stage timings. nf_export_build turns it
    into three files in memory:

      xlsx  "Outliers" (one row per outlier in rank order, bold frozen header,
            number formats, hyperlinks, autofilter, fitted widths), "AI
            Content" (wrapped text) and "Metadata" (parameters, funnel,
            counters, timings, version, failed videos with their errors);
      csv   RFC 4180, UTF-8 with CRLF: the outlier rows with their AI content;
      json  everything the workbook holds, as one object.

    Safety: every text is written as text, never as a formula; a text that
    a spreadsheet would evaluate (starting with = + - @, tab or CR) gets a
    leading apostrophe in the CSV, where it would otherwise be read as a
    formula; xlsx string cells are inert by type. Texts are capped at
    32,767 UTF-16 units, the xlsx cell limit. */
#ifndef NF_EXPORT_H
#define NF_EXPORT_H

#include "nf_proto.h"
#include "nf_util.h"

#define NF_CELL_MAX 32767 /* xlsx: characters (UTF-16 units) in a cell */

typedef struct {
    nf_buf_t xlsx; /* the workbook */
    nf_buf_t csv;  /* outliers and their AI content */
    nf_buf_t json; /* everything */
} nf_export_files_t;

/* A fetched thumbnail (JPEG or PNG bytes, borrowed). */
typedef struct {
    const char *video_id;
    const unsigned char *data;
    size_t len;
} nf_export_image_t;

/* Build the three files of TASK (an `export` task), the workbook with the
   NIMAGES thumbnails of IMAGES in its Outliers rows. TMPDIR is where
   libxlsxwriter may write its temporary file ("" for /tmp). 0, or -1 with
   ERR. Cost: linear in the videos; the workbook passes through one
   temporary file, removed before returning. */
int nf_export_build (const nf_task_t *task, const char *tmpdir, const nf_export_image_t *images,
                     size_t nimages, nf_export_files_t *out, char *err, size_t errlen);
void nf_export_files_free (nf_export_files_t *files);

/* Bytes of TEXT (LEN bytes of UTF-8) that fit in NF_CELL_MAX UTF-16 units,
   cut at a character boundary. */
size_t nf_cell_fit (const char *text, size_t len);

/* True when a spreadsheet would read TEXT as a formula or command. */
bool nf_cell_dangerous (const char *text);

/* "<niche>-<job>.<ext>" with the niche reduced to [a-z0-9-], at most 60
   characters ("niche" when nothing is left); COPY 2 and up make
   "<niche>-<job>-<copy>.<ext>" (the exporter never overwrites an earlier
   file). Caller frees. */
char *nf_export_file_name (const char *niche, int64_t job_id, int copy, const char *ext);

#endif
