// go_threads: a Go program (CGO_ENABLED=0, static) of the kind Go's runtime makes of every
// program — several OS threads (GOMAXPROCS), goroutines on them, channels, a WaitGroup,
// timers, async preemption of a goroutine spinning without calls (SIGURG sent with tgkill),
// the netpoller (epoll, a pipe) under os/exec, and a child process. Deterministic output.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	var wg sync.WaitGroup
	ch := make(chan int, 100)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(id int) {
			defer wg.Done()
			s := 0
			for j := 0; j < 1000000; j++ {
				s += j % (id + 1)
			}
			ch <- s
		}(i)
	}
	wg.Wait()
	close(ch)
	total := 0
	for v := range ch {
		total += v
	}
	fmt.Println("goroutines: sum", total)

	// Unbuffered ping-pong between two goroutines.
	ping, pong := make(chan int), make(chan int)
	go func() {
		for v := range ping {
			pong <- v + 1
		}
		close(pong)
	}()
	v := 0
	for i := 0; i < 1000; i++ {
		ping <- v
		v = <-pong
	}
	close(ping)
	fmt.Println("ping-pong:", v)

	// (Only that it fires: how long it took is not compared — the kvm rig's own clock,
	// under emulation, made a native run report 20 ms as less.)
	t := time.NewTimer(20 * time.Millisecond)
	<-t.C
	fmt.Println("timer fired")

	// A loop without function calls: the other goroutine runs only if the runtime preempts
	// this one (a signal to its thread), or on another thread.
	runtime.GOMAXPROCS(1)
	var stop int32
	go func() {
		time.Sleep(10 * time.Millisecond)
		atomic.StoreInt32(&stop, 1)
	}()
	n := 0
	for atomic.LoadInt32(&stop) == 0 {
		n++
	}
	fmt.Println("preempted a spinning goroutine:", n > 0)
	runtime.GOMAXPROCS(4)

	var mu sync.Mutex
	cond := sync.NewCond(&mu)
	ready := 0
	for i := 0; i < 4; i++ {
		go func() {
			mu.Lock()
			ready++
			cond.Broadcast()
			mu.Unlock()
		}()
	}
	mu.Lock()
	for ready < 4 {
		cond.Wait()
	}
	mu.Unlock()
	fmt.Println("cond: ready", ready)

	out, err := exec.Command("/bin/echo", "from a child").Output()
	if err != nil {
		fmt.Println("exec failed:", err)
		os.Exit(1)
	}
	fmt.Printf("os/exec: %s", out)
}
