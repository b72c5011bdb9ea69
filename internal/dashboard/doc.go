// Package dashboard serves a live web page of the detector's outputs: the
// rates and counts by category over the last 5 minutes, hour or day, the
// attack rate over time with spikes marked as the report marks them, the
// recent alerts with filters and a detail view, the top attacking sources
// and most attacked hosts, dead letters, and the detectors' health.
//
// A [Dashboard] reads the alerts, statistics and dead-letter topics
// (read-committed, from [Options.History] ago) into a bounded state: the
// per-minute statistics ([report.Aggregator]), per-minute counts of alerts
// by address (at most [Options.MaxAddresses] per minute and side), a ring
// of the newest [Options.MaxAlerts] alerts and one of dead letters. It
// watches the detectors' consumer group (members, committed offsets and
// lag) with kadm. The browser gets summaries computed on the server and a
// page of alerts at a time, so the page stays light whatever the traffic.
//
// [Dashboard.Handler] serves the page, its embedded assets (no inline
// script; a Content-Security-Policy without 'unsafe-inline') and a JSON
// API; server-sent events push each change. The page writes every value
// that came from the input as text, never as HTML. [Server] adds TLS and
// basic authentication.
//
// Goroutines: [Dashboard.Run] runs a reader and a group watcher and
// returns once both have stopped; [Server] runs net/http's, stopped by
// [Server.Shutdown].
//
// The page uses uPlot (MIT licence), vendored under assets/vendor/uplot.
package dashboard
