package main

import (
	"errors"
	"testing"

	"github.com/axon-hs/axon/internal/config"
)

// TestCoordinatorReadiness: losing etcd makes room and sender workers
// unready (they cannot know what they own) but leaves client, federation
// and sync workers in the load balancer, reported as degraded.
func TestCoordinatorReadiness(t *testing.T) {
	down := errors.New("no etcd session")
	for _, c := range []struct {
		roles           []config.Role
		err             error
		unready, degrad bool
	}{
		{[]config.Role{config.RoleSync}, down, false, true},
		{[]config.Role{config.RoleClient, config.RoleFederation}, down, false, true},
		{[]config.Role{config.RoleRoom}, down, true, false},
		{[]config.Role{config.RoleSender}, down, true, false},
		{[]config.Role{config.RoleSync, config.RoleRoom}, down, true, false},
		{[]config.Role{config.RoleRoom}, nil, false, false},
	} {
		problems, degraded := map[string]string{}, map[string]string{}
		coordinatorReadiness(&config.Config{Roles: c.roles}, c.err, problems, degraded)
		if _, got := problems["coordinator"]; got != c.unready {
			t.Errorf("roles %v, err %v: unready %v, want %v", c.roles, c.err, got, c.unready)
		}
		if _, got := degraded["coordinator"]; got != c.degrad {
			t.Errorf("roles %v, err %v: degraded %v, want %v", c.roles, c.err, got, c.degrad)
		}
	}
}
