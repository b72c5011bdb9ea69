// Package report turns the detector's per-minute statistics into a report
// for a time window: totals and shares by category, attack types per
// category, the attack rate over time, spikes against a robust baseline
// with their sources, the top attacking sources and most attacked hosts,
// and the health of the detector instances. It renders the report as PNG
// charts, a self-contained HTML page, a JSON summary and plain text.
//
// The package is pure: it is given statistics and returns reports. [Aggregator]
// sums [event.Stats] messages into a series of [Minute]s, [Build] turns a
// series, a [Window] and a [Config] into a [Report], [Highlights] picks the
// most novel alerts and the most frequent dead-letter reasons, [Charts],
// [WriteHTML], [PlainText] and [Write] render it, and [Schedule] says when
// reports fall due on the wall clock. Reading the statistics from Kafka is
// stream.StatsReader's job, delivering reports (with an outbox and retries)
// is package mail's, and the loop that produces reports on a schedule is
// the report command's.
//
// The package starts no goroutines.
package report
