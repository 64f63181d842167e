package serve

import (
	"bufio"
	"net"
	"syscall"
)

// Client is a Go client of the protocol: a control connection (for `luo
// kexec`) or, after HelloTask, a process's task (for tests).
type Client struct {
	c *net.UnixConn
	r *bufio.Reader
}

// Dial connects to a server and says hello as a control client.
func Dial(path string) (*Client, error) {
	return DialAs(path, HelloControl, 0)
}

// DialAs connects and says hello as kind (Hello*), with a fork token for
// HelloFork.
func DialAs(path string, kind int64, token uint64) (*Client, error) {
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, err
	}
	cl := &Client{c: c, r: bufio.NewReader(c)}
	p, err := cl.Call(&Request{Op: OpHello, Arg: [4]int64{kind, int64(token)}})
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	if p.Errno != 0 {
		_ = c.Close()
		return nil, syscall.Errno(p.Errno)
	}
	return cl, nil
}

// Call sends q and reads its reply.
func (c *Client) Call(q *Request) (*Reply, error) {
	if _, err := c.c.Write(q.Encode()); err != nil {
		return nil, err
	}
	return ReadReply(c.r)
}

// Kexec asks for reboot(LINUX_REBOOT_CMD_KEXEC).
func (c *Client) Kexec() error {
	p, err := c.Call(&Request{Op: OpKexec})
	if err != nil {
		return err
	}
	if p.Errno != 0 {
		return syscall.Errno(p.Errno)
	}
	return nil
}

// Kexecs is the number of kexecs the served machine went through.
func (c *Client) Kexecs() (int, error) {
	p, err := c.Call(&Request{Op: OpStatus})
	if err != nil {
		return 0, err
	}
	if len(p.Data) < 8 {
		return 0, errMalformed
	}
	return int(le.Uint64(p.Data)), nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.c.Close() }
