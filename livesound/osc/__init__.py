"""Remote control over OSC: the X32-dialect server, its reference, tablet layouts,
OSCQuery and zeroconf discovery."""
