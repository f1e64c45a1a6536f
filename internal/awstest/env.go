package awstest

import (
	"os"
	"strings"
)

// AccessKeyID and SecretAccessKey are the example credentials the
// servers' clients sign with (AWS's documentation pair).
const (
	AccessKeyID     = "AKIDEXAMPLE"
	SecretAccessKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
)

// Env is the environment of a process whose AWS client (the SDK, the AWS
// CLI) reaches the test servers the way it reaches AWS: the example
// credentials in the environment, no shared configuration or credentials
// files (whatever ~/.aws holds), no instance metadata. vars
// ("AWS_REGION=…", "AWS_ENDPOINT_URL_EC2=…") follow, and win.
func Env(vars ...string) []string {
	return append([]string{
		"AWS_ACCESS_KEY_ID=" + AccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + SecretAccessKey,
		"AWS_CONFIG_FILE=" + os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE=" + os.DevNull,
		"AWS_EC2_METADATA_DISABLED=true",
	}, vars...)
}

// SetEnv sets Env(vars...) in the test's own environment, for the rest
// of the test (t.Setenv), with no profile and no session token: the Go
// SDK reads an empty variable as unset. (The AWS CLI does not: an empty
// AWS_PROFILE names a profile "", hence their absence from Env.)
func SetEnv(t interface{ Setenv(key, value string) }, vars ...string) {
	for _, kv := range Env(append([]string{"AWS_PROFILE=", "AWS_SESSION_TOKEN="}, vars...)...) {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}
