package flowlog

import "sync"

// orderer hands results produced out of order by the workers to a deliver
// function in input order: input by input, block by block, part by part.
type orderer struct {
	deliver func(any) error

	mu      sync.Mutex
	cond    *sync.Cond
	pending map[orderKey][]any // results of blocks not yet delivered, by part
	done    map[orderKey]int   // blocks finished, with their number of parts
	nblocks []int              // blocks per input, -1 until the input is read
	input   int                // next input to deliver
	seq     int                // next block of that input
	closed  bool
	err     error
	stopped chan struct{}
}

type orderKey struct{ input, seq int }

func newOrderer(inputs int, deliver func(any) error) *orderer {
	o := &orderer{
		deliver: deliver,
		pending: make(map[orderKey][]any),
		done:    make(map[orderKey]int),
		nblocks: make([]int, inputs),
		stopped: make(chan struct{}),
	}
	for i := range o.nblocks {
		o.nblocks[i] = -1
	}
	o.cond = sync.NewCond(&o.mu)
	go o.loop()
	return o
}

func (o *orderer) add(input, seq int, v any) {
	o.mu.Lock()
	k := orderKey{input, seq}
	o.pending[k] = append(o.pending[k], v)
	o.mu.Unlock()
}

func (o *orderer) jobDone(input, seq, parts int) {
	o.mu.Lock()
	o.done[orderKey{input, seq}] = parts
	o.cond.Signal()
	o.mu.Unlock()
}

func (o *orderer) inputDone(input, blocks int) {
	o.mu.Lock()
	o.nblocks[input] = blocks
	o.cond.Signal()
	o.mu.Unlock()
}

// finish waits until everything received has been delivered.
func (o *orderer) finish() {
	o.mu.Lock()
	o.closed = true
	o.cond.Signal()
	o.mu.Unlock()
	<-o.stopped
}

func (o *orderer) loop() {
	defer close(o.stopped)
	o.mu.Lock()
	defer o.mu.Unlock()
	for {
		for o.input < len(o.nblocks) {
			if n := o.nblocks[o.input]; n >= 0 && o.seq >= n {
				o.input++
				o.seq = 0
				continue
			}
			k := orderKey{o.input, o.seq}
			if _, ok := o.done[k]; !ok {
				break
			}
			vs := o.pending[k]
			delete(o.pending, k)
			delete(o.done, k)
			o.seq++
			o.mu.Unlock()
			for _, v := range vs {
				if o.err == nil {
					o.err = o.deliver(v)
				}
			}
			o.mu.Lock()
		}
		if o.input >= len(o.nblocks) || o.closed {
			return
		}
		o.cond.Wait()
	}
}
