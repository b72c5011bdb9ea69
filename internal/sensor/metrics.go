package sensor

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// The metrics a sensor exports (Options.Registerer), updated at every
// commit:
//
//	netsentinel_sensor_records_total             records committed
//	netsentinel_sensor_transactions_total        transactions committed
//	netsentinel_sensor_line_errors_total         bad log lines skipped
//	netsentinel_sensor_packets_total             packets read (capture)
//	netsentinel_sensor_corrupt_packets_total     packets that did not decode
//	netsentinel_sensor_evicted_connections_total connections finished early at the table's limit
//	netsentinel_sensor_open_connections          connections open
//	netsentinel_sensor_kernel_packets_total      packets the kernel passed to the socket
//	netsentinel_sensor_kernel_drops_total        packets the kernel dropped (socket buffer full)
type metrics struct{ snap atomic.Pointer[Stats] }

func (s *Sensor) register(reg prometheus.Registerer) error {
	s.metrics.snap.Store(&Stats{})
	get := func(f func(*Stats) uint64) func() float64 {
		return func() float64 { return float64(f(s.metrics.snap.Load())) }
	}
	cs := []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "netsentinel_sensor_records_total", Help: "Records committed to the records topic."}, get(func(x *Stats) uint64 { return x.Records })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "netsentinel_sensor_transactions_total", Help: "Kafka transactions committed."}, get(func(x *Stats) uint64 { return x.Transactions })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "netsentinel_sensor_line_errors_total", Help: "Bad Zeek log lines skipped."}, get(func(x *Stats) uint64 { return x.LineErrors })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "netsentinel_sensor_packets_total", Help: "Packets read from the capture."}, get(func(x *Stats) uint64 { return x.Tracker.Packets })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "netsentinel_sensor_corrupt_packets_total", Help: "Packets whose headers did not decode."}, get(func(x *Stats) uint64 { return x.Tracker.Corrupt })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "netsentinel_sensor_evicted_connections_total", Help: "Connections finished early because the flow table was full."}, get(func(x *Stats) uint64 { return x.Tracker.Evicted })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "netsentinel_sensor_open_connections", Help: "Connections open in the flow table."}, get(func(x *Stats) uint64 { return x.Tracker.Open })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "netsentinel_sensor_kernel_packets_total", Help: "Packets the kernel passed to the capture socket."}, get(func(x *Stats) uint64 { return x.Kernel.Packets })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "netsentinel_sensor_kernel_drops_total", Help: "Packets the kernel dropped because the capture socket's buffer was full."}, get(func(x *Stats) uint64 { return x.Kernel.Drops })),
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// publish makes the current counters visible to the metrics.
func (s *Sensor) publish() {
	st := s.stats
	s.metrics.snap.Store(&st)
}
