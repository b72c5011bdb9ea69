// Package record defines the 41-feature connection record of the KDD Cup 1999
// schema, decodes it from CSV lines and JSON objects with strict validation,
// encodes it back, and maps attack names to their categories.
//
// A decoded Record holds every feature as a float64. The three symbolic
// features (protocol_type, service, flag) hold the index of their value in a
// fixed vocabulary (Protocols, Services, Flags), so the encoding is stable
// across data sets and model files. A service or flag the vocabulary lacks is
// valid input: it maps to the vocabulary's own catch-all value ("other" for
// services, "OTH" for flags). An unknown protocol is an error.
//
// Decoding never returns a silent zero: a bad field gives a *FieldError that
// names the field, the value and the reason (one of the Err* sentinels).
package record

import "strconv"

// NumFeatures is the number of features in a connection record.
const NumFeatures = 41

// Kind says how a feature's value is validated and encoded.
type Kind uint8

const (
	// KindUnknown is the zero Kind; no feature has it.
	KindUnknown Kind = iota
	// KindSymbolic is a string from a vocabulary, encoded as its index.
	KindSymbolic
	// KindBinary is 0 or 1.
	KindBinary
	// KindCount is a non-negative integer.
	KindCount
	// KindRate is a fraction in [0, 1].
	KindRate
	// KindContinuous is a non-negative real number.
	KindContinuous
)

// String returns the kind's name.
func (k Kind) String() string {
	switch k {
	case KindUnknown:
		return "unknown"
	case KindSymbolic:
		return "symbolic"
	case KindBinary:
		return "binary"
	case KindCount:
		return "count"
	case KindRate:
		return "rate"
	case KindContinuous:
		return "continuous"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Feature describes one column of the schema.
type Feature struct {
	Name string
	Kind Kind
}

// Indexes of the features that code needs by name.
const (
	Duration     = 0
	ProtocolType = 1
	Service      = 2
	Flag         = 3
	SrcBytes     = 4
	DstBytes     = 5
	// Hot through IsGuestLogin are the content features.
	Hot          = 9
	IsGuestLogin = 21
)

// Features lists the 41 features in file order (kddcup.names).
var Features = [NumFeatures]Feature{
	{"duration", KindContinuous},
	{"protocol_type", KindSymbolic},
	{"service", KindSymbolic},
	{"flag", KindSymbolic},
	{"src_bytes", KindCount},
	{"dst_bytes", KindCount},
	{"land", KindBinary},
	{"wrong_fragment", KindCount},
	{"urgent", KindCount},
	{"hot", KindCount},
	{"num_failed_logins", KindCount},
	{"logged_in", KindBinary},
	{"num_compromised", KindCount},
	{"root_shell", KindCount},
	{"su_attempted", KindCount},
	{"num_root", KindCount},
	{"num_file_creations", KindCount},
	{"num_shells", KindCount},
	{"num_access_files", KindCount},
	{"num_outbound_cmds", KindCount},
	{"is_host_login", KindBinary},
	{"is_guest_login", KindBinary},
	{"count", KindCount},
	{"srv_count", KindCount},
	{"serror_rate", KindRate},
	{"srv_serror_rate", KindRate},
	{"rerror_rate", KindRate},
	{"srv_rerror_rate", KindRate},
	{"same_srv_rate", KindRate},
	{"diff_srv_rate", KindRate},
	{"srv_diff_host_rate", KindRate},
	{"dst_host_count", KindCount},
	{"dst_host_srv_count", KindCount},
	{"dst_host_same_srv_rate", KindRate},
	{"dst_host_diff_srv_rate", KindRate},
	{"dst_host_same_src_port_rate", KindRate},
	{"dst_host_srv_diff_host_rate", KindRate},
	{"dst_host_serror_rate", KindRate},
	{"dst_host_srv_serror_rate", KindRate},
	{"dst_host_rerror_rate", KindRate},
	{"dst_host_srv_rerror_rate", KindRate},
}

// Protocols is the vocabulary of protocol_type. Any other value is an error.
var Protocols = []string{"tcp", "udp", "icmp"}

// Services is the vocabulary of service: the 70 values found in the KDD'99
// and NSL-KDD files. An unseen service maps to "other".
var Services = []string{
	"IRC", "X11", "Z39_50", "aol", "auth", "bgp", "courier", "csnet_ns", "ctf",
	"daytime", "discard", "domain", "domain_u", "echo", "eco_i", "ecr_i", "efs",
	"exec", "finger", "ftp", "ftp_data", "gopher", "harvest", "hostnames", "http",
	"http_2784", "http_443", "http_8001", "imap4", "iso_tsap", "klogin", "kshell",
	"ldap", "link", "login", "mtp", "name", "netbios_dgm", "netbios_ns",
	"netbios_ssn", "netstat", "nnsp", "nntp", "ntp_u", "other", "pm_dump", "pop_2",
	"pop_3", "printer", "private", "red_i", "remote_job", "rje", "shell", "smtp",
	"sql_net", "ssh", "sunrpc", "supdup", "systat", "telnet", "tftp_u", "tim_i",
	"time", "urh_i", "urp_i", "uucp", "uucp_path", "vmnet", "whois",
}

// Flags is the vocabulary of flag (the connection's TCP state). An unseen flag
// maps to "OTH".
var Flags = []string{"OTH", "REJ", "RSTO", "RSTOS0", "RSTR", "S0", "S1", "S2", "S3", "SF", "SH"}

// Vocabulary returns the vocabulary of symbolic feature i, or nil if feature i
// is not symbolic.
func Vocabulary(i int) []string {
	switch i {
	case ProtocolType:
		return Protocols
	case Service:
		return Services
	case Flag:
		return Flags
	}
	return nil
}

var (
	serviceCode  = indexOf(Services)
	flagCode     = indexOf(Flags)
	otherService = serviceCode["other"]
	otherFlag    = flagCode["OTH"]
	featureIndex = func() map[string]int {
		m := make(map[string]int, NumFeatures)
		for i, f := range Features {
			m[f.Name] = i
		}
		return m
	}()
)

func indexOf(vocab []string) map[string]int {
	m := make(map[string]int, len(vocab))
	for i, v := range vocab {
		m[v] = i
	}
	return m
}

// Record is one decoded connection record.
type Record struct {
	// Features holds the 41 feature values in schema order; symbolic
	// features hold their vocabulary index.
	Features [NumFeatures]float64
	// Label is the attack name or "normal", without KDD'99's trailing dot;
	// empty when the input had no label.
	Label string
	// Absent has bit i set when feature i was not in the input (only
	// DecodePartial leaves features out; its value is then 0).
	Absent uint64
	// Difficulty is NSL-KDD's difficulty level, or -1 when absent.
	Difficulty int
	// UnseenService and UnseenFlag hold the service and flag as written
	// when the vocabulary lacks them (Features then holds "other" or
	// "OTH"); empty otherwise.
	UnseenService, UnseenFlag string
	// ID is the connection's identity when a JSON record carries it
	// (ports -1 when unknown); CSV records leave it unknown.
	ID Identity
}

// Symbol returns the string value of symbolic feature i.
func (r *Record) Symbol(i int) string {
	vocab := Vocabulary(i)
	c := int(r.Features[i])
	if vocab == nil || c < 0 || c >= len(vocab) {
		return ""
	}
	return vocab[c]
}
