// Package conntrack turns captured packets into connections: it decodes
// link, IP (v4 and v6, VLAN tags, extension headers) and transport headers
// without allocating, reassembles IP fragments in bounded memory (counting
// KDD's wrong fragments), follows TCP connections through Zeek's
// conn_state rules, times out UDP flows, and emits each finished
// connection as a features.Conn with the KDD'99 intrinsic features
// (duration, protocol_type, service, flag, src_bytes, dst_bytes, land,
// wrong_fragment, urgent) and the content features packets show
// (logged_in; num_failed_logins and is_guest_login for FTP).
//
// TCP states map to KDD's flag as Zeek names them (S0, S1, SF, REJ, S2,
// S3, RSTO, RSTR, RSTOS0, SH, OTH) except RSTRH, which becomes RSTR, and
// SHR, which becomes OTH (features.ZeekFlag).
//
// Memory is bounded by Config.MaxConns open connections (about 300 bytes
// each), Config.MaxPending finished ones waiting for their turn (about 600
// bytes each) and Config.MaxFragDatagrams datagrams in reassembly (at most
// 64 ranges and 64 header bytes each); a flood of half-open connections
// evicts the oldest attempts and counts them (Stats.Evicted). The package
// has no goroutines and does no I/O.
package conntrack
