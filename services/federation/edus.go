package federation

// EDUReceiver applies inbound EDUs. Placeholder: defined by the EDU work.
type EDUReceiver interface{}
