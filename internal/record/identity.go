package record

// Identity names the connection a record describes, when its source knows it
// (records extracted from packets or Zeek logs carry it; KDD files do not).
// In JSON it is read from and written as the top-level keys "ts", "src_ip",
// "src_port", "dst_ip", "dst_port" and "uid" beside the features.
type Identity struct {
	// TS is the connection's start in seconds since the Unix epoch; 0 when
	// unknown.
	TS float64
	// SrcIP and DstIP are the originator's and the responder's addresses in
	// their text form; empty when unknown.
	SrcIP, DstIP string
	// SrcPort and DstPort are the ports (ICMP: type and code as Zeek gives
	// them); -1 when unknown.
	SrcPort, DstPort int32
	// UID is the connection's identifier (Zeek's uid, or the extractor's);
	// empty when unknown.
	UID string
}

// Known reports whether any part of the identity is known.
func (id Identity) Known() bool {
	return id.SrcIP != "" || id.DstIP != "" || id.UID != "" || id.TS != 0
}
