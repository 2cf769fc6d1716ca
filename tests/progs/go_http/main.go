// go_http: Go's net/http server and client on the loopback in one process (goroutines on
// the netpoller, keep-alive connections, concurrent requests), a raw net.Dial refused, UDP
// with net.ListenUDP/DialUDP, and a dual-stack listener reached over IPv4 and IPv6. Nothing
// printed depends on port numbers or timing.
package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"syscall"
)

func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Len", fmt.Sprint(len(body)))
		fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.Query().Get("name"), strings.ToUpper(string(body)))
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	base := "http://" + ln.Addr().String()

	resp, err := http.Get(base + "/hello?name=go")
	check(err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println("GET:", resp.StatusCode, string(b))

	resp, err = http.Post(base+"/hello?name=post", "text/plain", strings.NewReader(strings.Repeat("a", 300000)))
	check(err)
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println("POST:", resp.StatusCode, resp.Header.Get("X-Len"), len(b))

	var wg sync.WaitGroup
	var mu sync.Mutex
	var got []string
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r, err := http.Get(fmt.Sprintf("%s/hello?name=n%02d", base, i))
			check(err)
			b, _ := io.ReadAll(r.Body)
			r.Body.Close()
			mu.Lock()
			got = append(got, string(b))
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	sort.Strings(got)
	fmt.Println("concurrent:", len(got), got[0], got[19])
	check(srv.Close())

	// A refused connection.
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	addr := dead.Addr().String()
	dead.Close()
	_, err = net.Dial("tcp", addr)
	fmt.Println("refused:", errors.Is(err, syscall.ECONNREFUSED))

	// UDP.
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	check(err)
	c, err := net.DialUDP("udp", nil, pc.LocalAddr().(*net.UDPAddr))
	check(err)
	_, err = c.Write([]byte("datagram"))
	check(err)
	buf := make([]byte, 100)
	n, from, err := pc.ReadFromUDP(buf)
	check(err)
	fmt.Println("udp:", string(buf[:n]), from.String() == c.LocalAddr().String())
	c.Close()
	pc.Close()

	// A dual-stack listener.
	l6, err := net.Listen("tcp", "[::]:0")
	check(err)
	port := l6.Addr().(*net.TCPAddr).Port
	var peers []string
	for _, host := range []string{"127.0.0.1", "::1"} {
		d, err := net.Dial("tcp", net.JoinHostPort(host, fmt.Sprint(port)))
		check(err)
		a, err := l6.Accept()
		check(err)
		peers = append(peers, a.RemoteAddr().(*net.TCPAddr).IP.String())
		a.Close()
		d.Close()
	}
	fmt.Println("dual stack peers:", peers)
	l6.Close()
	fmt.Println("done")
}

func check(err error) {
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
}
