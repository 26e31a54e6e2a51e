package main

import (
	"context"

	"github.com/axon-hs/axon/services/federation"
)

func (s *server) eduReceiver(context.Context) federation.EDUReceiver { return nil }
