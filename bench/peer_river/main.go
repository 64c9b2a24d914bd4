// peer_river: the peer of bench/orchestration.py, River (riverqueue.com), a
// PostgreSQL job queue for Go: chains of no-op jobs through as many stages
// as nicheflow's per-video chain (scrape, sanitize, geo), on the same
// PostgreSQL with the same durability. VIDEOS first-stage jobs are inserted
// in one InsertMany (discovery's insert), each job's worker inserts the
// next stage's job and returns (its completion batched by River's
// completer). Prints transitions/s: the inserts of the first stage plus
// every completion, from the first insert to the last completion, as
// nf_video_history counts a video's creation and each of its moves.
//
//	peer_river -db URL [-videos 5000] [-stages 3] [-runs 3] [-workers 100]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

type StageArgs struct {
	Run   int `json:"run"`
	Video int `json:"video"`
	Stage int `json:"stage"`
}

func (StageArgs) Kind() string { return "stage" }

type StageWorker struct {
	river.WorkerDefaults[StageArgs]
	stages int
	client **river.Client[pgx.Tx]
}

func (w *StageWorker) Work(ctx context.Context, job *river.Job[StageArgs]) error {
	if job.Args.Stage < w.stages {
		next := job.Args
		next.Stage++
		_, err := (*w.client).Insert(ctx, next, nil)
		return err
	}
	return nil
}

func main() {
	db := flag.String("db", "", "PostgreSQL URL")
	videos := flag.Int("videos", 5000, "chains per run")
	stages := flag.Int("stages", 3, "jobs per chain")
	runs := flag.Int("runs", 3, "runs")
	workers := flag.Int("workers", 100, "MaxWorkers of the queue")
	flag.Parse()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, *db)
	if err != nil {
		fail(err)
	}
	defer pool.Close()
	migrator, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		fail(err)
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		fail(err)
	}
	var client *river.Client[pgx.Tx]
	ws := river.NewWorkers()
	river.AddWorker(ws, &StageWorker{stages: *stages, client: &client})
	client, err = river.NewClient(riverpgxv5.New(pool), &river.Config{
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: *workers}},
		Workers:           ws,
		FetchCooldown:     time.Millisecond,
		FetchPollInterval: 50 * time.Millisecond,
		Logger:            nil,
	})
	if err != nil {
		fail(err)
	}
	// River drops an event when a subscription's buffer is full (1,000 by
	// default; "Subscription event dropped due to full buffer"), and this
	// loop counts every completion: with two shared cores it fell behind,
	// lost events and waited forever for the run's last ones. The buffer
	// holds a whole run's completions.
	done, cancel := client.SubscribeConfig(&river.SubscribeConfig{
		ChanSize: *videos * *stages,
		Kinds:    []river.EventKind{river.EventKindJobCompleted},
	})
	defer cancel()
	if err := client.Start(ctx); err != nil {
		fail(err)
	}
	var rates []float64
	for run := 1; run <= *runs; run++ {
		params := make([]river.InsertManyParams, *videos)
		for i := range params {
			params[i] = river.InsertManyParams{Args: StageArgs{Run: run, Video: i, Stage: 1}}
		}
		t0 := time.Now()
		if _, err := client.InsertMany(ctx, params); err != nil {
			fail(err)
		}
		want := *videos * *stages
		deadline := time.After(10 * time.Minute)
		for got := 0; got < want; {
			select {
			case e := <-done:
				if e != nil && e.Job != nil {
					got++
				}
			case <-deadline:
				fail(fmt.Errorf("run %d: %d of %d jobs completed in 10 min", run, got, want))
			}
		}
		secs := time.Since(t0).Seconds()
		n := *videos * (*stages + 1)
		rates = append(rates, float64(n)/secs)
		fmt.Printf("  river run %d: %d transitions (%d inserts, %d completions) in %.2f s: %.0f transitions/s\n",
			run, n, *videos, want, secs, float64(n)/secs)
	}
	stop, cancelStop := context.WithTimeout(ctx, 30*time.Second)
	defer cancelStop()
	if err := client.Stop(stop); err != nil {
		fail(err)
	}
	sort.Float64s(rates)
	fmt.Printf("river: %.0f transitions/s, median of %d runs (%.0f..%.0f)\n", rates[len(rates)/2], len(rates),
		rates[0], rates[len(rates)-1])
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "peer_river:", err)
	os.Exit(1)
}
