// Package stream moves connection records through Kafka: a Publisher
// replays records into a topic, and a Detector consumes them in a consumer
// group, scores each with a model and writes its outputs with exactly-once
// semantics.
//
// # Exactly once
//
// The Detector uses franz-go's GroupTransactSession: for each poll it
// begins a transaction, decodes and scores the records, produces the
// outputs, and ends the transaction, committing the input offsets in it.
// The session reads with ReadCommitted isolation and requires stable
// offsets (KIP-447). If the group rebalances before the end, or anything
// fails, the transaction is aborted and the records are redelivered to
// whichever member then owns their partition; a crash at any point leaves
// an open transaction that the broker aborts when the restarted instance
// (same transactional ID) or the timeout fences it. Each commit names its
// transactional ID in the offsets' metadata, so when such a transaction
// blocks a partition's next owner (its offsets were committed in it), the
// owner fences that ID itself after Options.OrphanTimeout instead of
// waiting for the timeout. So every input record yields exactly one of: a
// normal count, an alert, or a dead letter.
//
// # Progress and health
//
// Besides the poll loop, Run keeps one goroutine that every second reads
// the group's committed offsets and the topic's end offsets (the lag of
// the partitions the detector owns) and checks for progress: a committed
// transaction, or no record waiting. While the detector has an error since
// its last progress (a refused connection, a group coordinator error, a
// failed fetch or lag check) it logs a warning naming it, at once and then
// every Options.CheckInterval; after Options.StallTimeout without progress
// Health returns an error wrapping ErrStalled, for a health endpoint.
//
// # Models
//
// SetScorer swaps the scorer between batches; every alert and Stats message
// names the model (Options.Model, e.g. the model file's fingerprint) that
// scored it. A service or flag the schema's vocabulary lacks is scored as
// "other" / "OTH" and counted: unseen_service / unseen_flag in the alert,
// Stats.Unseen, and the unseen_values_total metric.
//
// # Outputs
//
//   - alerts topic: one event.Alert JSON per record whose verdict is not
//     normal, with the source topic, partition, offset and timestamp, the
//     features and the record's own label if it had one;
//   - dead-letter topic: one event.DeadLetter JSON per record that fails to
//     decode, with the original bytes (cut to Options.MaxDeadLetterValue),
//     the reason and the source position;
//   - stats topic: event.Stats JSON per transaction and minute of record
//     timestamps, counting records by category and attack and dead letters.
//     A minute has several Stats messages; readers sum them.
//   - incidents topic (Options.Incidents): event.Incident JSON keyed by
//     incident ID, when an incident opens, at most every UpdateInterval
//     while it grows, and when it closes; with its compacted changelog
//     topic of incident state (see IncidentOptions and docs/DESIGN.md).
//
// The books balance: records consumed = sum of Stats.Records (normal +
// alerts) + sum of Stats.DeadLetters = normal + alert messages + dead-letter
// messages.
//
// # Reading the outputs back
//
// StatsReader reads the outputs by timestamp for reports: the statistics
// of a span (summed into report.Minutes, or continued from where the last
// read stopped with a StatsCache) and the window's most novel alerts and
// dead-letter reasons (Extras). FollowOutputs reads the output topics from
// their start until its context ends, handing each decoded message to a
// handler, for a live reader such as the demo. Both read committed
// transactions only. CreateTopics creates topics with the brokers' default
// replication.
//
// # Metrics
//
// The Detector registers these Prometheus metrics on Options.Registerer:
//
//	netsentinel_detect_records_total              counter   input records in committed transactions
//	netsentinel_detect_verdicts_total{category}   counter   verdicts by predicted category
//	netsentinel_detect_alerts_total               counter   alerts written
//	netsentinel_detect_dead_letters_total         counter   records that failed to decode
//	netsentinel_detect_consumer_lag{partition}    gauge     records waiting per owned partition (last fetch or lag check)
//	netsentinel_detect_batch_duration_seconds     histogram poll-to-transaction-end time per batch
//	netsentinel_detect_batch_records              histogram input records per batch
//	netsentinel_detect_transactions_total{result} counter   transactions committed or aborted
//	netsentinel_detect_produce_errors_total       counter   output records that failed to produce
//	netsentinel_detect_session_restarts_total     counter   Kafka sessions recreated after errors
//	netsentinel_detect_incidents_open             gauge     open incidents held in memory (incidents on)
//	netsentinel_detect_incident_messages_total{status} counter incident messages by status
//	netsentinel_detect_withheld_verdicts_total{rule}   counter verdicts a rule kept out of incidents
//	netsentinel_detect_incident_restores_total    counter   partitions restored from the changelog
//	netsentinel_detect_incident_changelog_corrupt_total counter changelog entries skipped in restores
//	netsentinel_detect_last_commit_timestamp_seconds gauge  Unix time of the last committed transaction
//	netsentinel_detect_records_waiting            gauge     records waiting in the owned partitions (committed offsets)
//	netsentinel_detect_stalled                    gauge     1 while stalled longer than StallTimeout
//	netsentinel_detect_unseen_values_total{feature} counter scored records with an unseen service or flag
//
// # Security
//
// ClientOptions turns a ClientConfig (brokers, TLS, SASL PLAIN or
// SCRAM-SHA-256/512) into franz-go options; every client here uses it.
package stream

// Default topic and group names, shared by the commands.
const (
	DefaultTopic           = "netsentinel-records"
	DefaultAlertsTopic     = "netsentinel-alerts"
	DefaultIncidentsTopic  = "netsentinel-incidents"
	DefaultStatsTopic      = "netsentinel-stats"
	DefaultDeadLetterTopic = "netsentinel-dead-letters"
	DefaultGroup           = "netsentinel-detect"
)
