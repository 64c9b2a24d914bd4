-- A claim is a HOT update (issue 28). Every transition updates a video's
-- row twice: the claim sets its lease, the outcome its state. The state is
-- a key of nf_videos_due, so the outcome's update writes a new entry in
-- every index; the claim's did too, because of nf_videos_lease, the
-- partial index on the token. The broker now finds a lease's row by its
-- key (job_id, video_id) with the token as the fence, so the index goes:
-- the claim touches no indexed column, and PostgreSQL can keep the new
-- version on the same page without index entries, when the page has room.
-- A fill factor of 75 leaves that room on the pages written from now on.
-- Measured with bench/floor.py's statements (5,000 videos, two runs
-- each way): PostgreSQL's CPU 80 -> 70 us a transition, 39% of the
-- claims HOT. In the full pipeline the change is inside the noise: there
-- PostgreSQL's time goes to the texts (BENCHMARKS.md, section 1).
DROP INDEX nf_videos_lease;
ALTER TABLE nf_videos SET (fillfactor = 75);
