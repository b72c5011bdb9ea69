package features

import (
	"bufio"
	"compress/gzip"
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestServiceNames(t *testing.T) {
	f := func(got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
		if _, ok := ServiceIndex(got); !ok {
			t.Errorf("%q is not a KDD service", got)
		}
	}
	f(PortService(6, 80), "http")
	f(PortService(6, 21), "ftp")
	f(PortService(6, 20), "ftp_data")
	f(PortService(6, 6003), "X11")
	f(PortService(6, 6667), "IRC")
	f(PortService(6, 999), "other")
	f(PortService(6, 31337), "private")
	f(PortService(17, 53), "domain_u")
	f(PortService(6, 53), "domain")
	f(PortService(17, 80), "other")
	f(PortService(17, 40000), "private")
	f(ICMPService(false, 8, 0), "eco_i")
	f(ICMPService(false, 0, 0), "ecr_i")
	f(ICMPService(false, 3, 3), "urp_i")
	f(ICMPService(false, 3, 1), "urh_i")
	f(ICMPService(false, 5, 0), "red_i")
	f(ICMPService(false, 11, 0), "tim_i")
	f(ICMPService(false, 13, 0), "other")
	f(ICMPService(true, 128, 0), "eco_i")
	f(ICMPService(true, 1, 4), "urp_i")
	f(ZeekService(6, "ssl", 1, 443), "http_443")
	f(ZeekService(6, "http", 1, 8080), "http")
	f(ZeekService(6, "", 1, 25), "smtp")
	f(ZeekService(6, "krb_tcp,gssapi", 1, 88), "other")
	f(ZeekService(17, "dns", 1, 5353), "domain_u")
	f(ZeekService(6, "ftp-data", 1, 40000), "ftp_data")
	f(ZeekService(1, "", 8, 0), "eco_i")
	for port := range 65536 {
		for _, p := range []uint8{6, 17} {
			if _, ok := ServiceIndex(PortService(p, uint16(port))); !ok {
				t.Fatalf("PortService(%d, %d) = %q, not a KDD service", p, port, PortService(p, uint16(port)))
			}
		}
	}
	for typ := range 256 {
		if _, ok := ServiceIndex(ICMPService(typ%2 == 0, uint8(typ), 3)); !ok {
			t.Fatalf("ICMPService(%d) not a KDD service", typ)
		}
	}
}

// TestLoggedInMatchesKDD measures LoggedIn against the logged_in column of
// KDDTrain+: the rule sees what packets and Zeek see (protocol, service,
// flag, src_bytes) and must agree with the 1999 extraction on most rows.
func TestLoggedInMatchesKDD(t *testing.T) {
	fh, err := os.Open("../../data/KDDTrain+.txt.gz")
	if err != nil {
		t.Skipf("training data: %v", err)
	}
	defer fh.Close()
	zr, err := gzip.NewReader(fh)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(zr)
	var n, agree, normalN, normalAgree int
	for sc.Scan() {
		f := strings.Split(sc.Text(), ",")
		src, _ := strconv.ParseFloat(f[4], 64)
		got := LoggedIn(f[1], f[2], f[3], src)
		ok := got == (f[11] == "1")
		n++
		if ok {
			agree++
		}
		if f[41] == "normal" {
			normalN++
			if ok {
				normalAgree++
			}
		}
	}
	all, normal := float64(agree)/float64(n), float64(normalAgree)/float64(normalN)
	t.Logf("logged_in agreement: %.4f of %d rows, %.4f of %d normal rows", all, n, normal, normalN)
	if all < 0.95 || normal < 0.95 {
		t.Errorf("LoggedIn agrees with KDDTrain+ on %.3f of rows (%.3f of normal ones), want >= 0.95", all, normal)
	}
}
