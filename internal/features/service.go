package features

import "strings"

// Service naming, shared by every source of connections.
//
// TCP and UDP connections are named by the responder's port after the
// services the KDD files name (the well-known port of each); an unlisted
// port below 1024 is "other" and one from 1024 up is "private". ICMP
// messages are named by type as the KDD files do: echo reply "ecr_i", echo
// request "eco_i", destination unreachable "urp_i" (port unreachable) or
// "urh_i" (any other code), redirect "red_i", time exceeded "tim_i"; other
// types are "other". ICMPv6's equivalents get the same names.

var tcpServices = map[uint16]string{
	7: "echo", 9: "discard", 11: "systat", 13: "daytime", 15: "netstat",
	20: "ftp_data", 21: "ftp", 22: "ssh", 23: "telnet", 25: "smtp", 37: "time",
	42: "name", 43: "whois", 53: "domain", 57: "mtp", 70: "gopher", 71: "remote_job",
	77: "rje", 79: "finger", 80: "http", 84: "ctf", 87: "link", 95: "supdup",
	101: "hostnames", 102: "iso_tsap", 105: "csnet_ns", 109: "pop_2", 110: "pop_3",
	111: "sunrpc", 113: "auth", 117: "uucp_path", 119: "nntp", 137: "netbios_ns",
	138: "netbios_dgm", 139: "netbios_ssn", 143: "imap4", 150: "sql_net",
	175: "vmnet", 179: "bgp", 194: "IRC", 210: "Z39_50", 389: "ldap", 433: "nnsp",
	443: "http_443", 512: "exec", 513: "login", 514: "shell", 515: "printer",
	520: "efs", 530: "courier", 540: "uucp", 543: "klogin", 544: "kshell",
	2784: "http_2784", 5190: "aol", 6667: "IRC", 8001: "http_8001",
}

var udpServices = map[uint16]string{53: "domain_u", 69: "tftp_u", 123: "ntp_u"}

// PortService returns the KDD service name of a TCP (proto 6) or UDP
// (proto 17) connection to port.
func PortService(proto uint8, port uint16) string {
	var s string
	var ok bool
	switch proto {
	case 6:
		if port >= 6000 && port <= 6063 {
			return "X11"
		}
		s, ok = tcpServices[port]
	case 17:
		s, ok = udpServices[port]
	}
	if ok {
		return s
	}
	if port < 1024 {
		return "other"
	}
	return "private"
}

// ICMPService returns the KDD service name of an ICMP (v6 false) or ICMPv6
// message of the given type and code.
func ICMPService(v6 bool, typ, code uint8) string {
	if v6 {
		switch typ {
		case 129:
			return "ecr_i"
		case 128:
			return "eco_i"
		case 1:
			if code == 4 {
				return "urp_i"
			}
			return "urh_i"
		case 137:
			return "red_i"
		case 3:
			return "tim_i"
		}
		return "other"
	}
	switch typ {
	case 0:
		return "ecr_i"
	case 8:
		return "eco_i"
	case 3:
		if code == 3 {
			return "urp_i"
		}
		return "urh_i"
	case 5:
		return "red_i"
	case 11:
		return "tim_i"
	}
	return "other"
}

// zeekServices maps the names of Zeek's protocol analyzers (the service
// field of conn.log) to KDD names where the two differ by more than case.
var zeekServices = map[string]string{
	"dns": "domain", "ftp-data": "ftp_data", "pop3": "pop_3", "imap": "imap4",
	"irc": "IRC", "ntp": "ntp_u", "tftp": "tftp_u", "netbios-ns": "netbios_ns",
	"netbios-ssn": "netbios_ssn", "smb": "netbios_ssn", "krb": "other",
	"ssl": "http_443", "rlogin": "login", "rsh": "shell",
}

// ZeekService returns the KDD service name of a Zeek connection: from
// Zeek's own service field when it names a KDD service (the first of a
// comma-separated list that does), otherwise from the port as PortService
// does. proto is 6, 17 or 1/58 for ICMP (port then holds the ICMP type and
// code as Zeek's id.orig_p and id.resp_p).
func ZeekService(proto uint8, zeekService string, origPort, respPort uint16) string {
	if proto == 1 || proto == 58 {
		return ICMPService(proto == 58, uint8(origPort), uint8(respPort))
	}
	for s := range strings.SplitSeq(zeekService, ",") {
		s = strings.ToLower(strings.TrimSpace(s))
		if s == "" || s == "-" {
			continue
		}
		if k, ok := zeekServices[s]; ok {
			s = k
		}
		if proto == 17 && (s == "domain" || s == "ntp" || s == "tftp") {
			s += "_u"
		}
		if _, ok := ServiceIndex(s); ok && s != "other" && s != "private" {
			return s
		}
	}
	return PortService(proto, respPort)
}

// loginServices are the services whose KDDTrain+ TCP connections with
// payload from the originator mostly (at least half of them) have
// logged_in set; for the others the share is below a quarter (finger 0%,
// private 1%, other 34% of 756).
var loginServices = map[string]bool{
	"http": true, "smtp": true, "pop_3": true, "ftp": true, "domain": true,
	"telnet": true, "X11": true, "nntp": true, "gopher": true, "ssh": true,
	"uucp": true, "ftp_data": true, "auth": true, "imap4": true, "IRC": true,
	"time": true, "login": true, "echo": true, "daytime": true,
}

// LoggedIn returns KDD's logged_in for a connection that its source cannot
// follow into the application: as the KDD files set it (measured on
// KDDTrain+), 1 for a TCP connection of a login-bearing service in which
// the originator sent payload and the handshake was not refused or left
// half-open, 0 otherwise (UDP and ICMP are always 0).
func LoggedIn(protocol, service, flag string, srcBytes float64) bool {
	if protocol != "tcp" || srcBytes <= 0 || !loginServices[service] {
		return false
	}
	switch flag {
	case "S0", "REJ", "RSTOS0", "SH", "OTH":
		return false
	}
	return true
}

// ZeekFlag maps a Zeek conn_state to KDD's flag. The eleven states KDD
// knows keep their name; RSTRH (the responder sent SYN-ACK then RST, no
// SYN seen) becomes RSTR, the responder's reset; SHR (the responder sent
// SYN-ACK then FIN, no SYN seen) has no KDD counterpart and becomes OTH.
// UDP and ICMP connections are always SF in the KDD files, whatever their
// state.
func ZeekFlag(protocol, state string) string {
	if protocol != "tcp" {
		return "SF"
	}
	switch state {
	case "S0", "S1", "SF", "REJ", "S2", "S3", "RSTO", "RSTR", "RSTOS0", "SH", "OTH":
		return state
	case "RSTRH":
		return "RSTR"
	}
	return "OTH"
}
