// Package report turns the detector's per-minute statistics into a report
// for a time window: totals and shares by category, attack types per
// category, the attack rate over time, spikes against a robust baseline,
// and the health of the detector instances. It renders the report as PNG
// charts, a self-contained HTML page and a JSON summary.
//
// The core is pure: [Aggregator] sums [event.Stats] messages into a series
// of [Minute]s and [Build] turns a series, a [Window] and a [Config] into a
// [Report]. [Charts] and [Write] render it; [Reader] reads the series from
// the detector's Kafka topics by timestamp; [Scheduler] produces reports
// aligned to the wall clock and remembers in a state file which windows
// were produced and which reports still wait for delivery.
//
// The package starts goroutines only inside [Scheduler.Run], which returns
// once they have stopped.
package report
