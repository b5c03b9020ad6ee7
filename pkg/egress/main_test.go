package egress

import (
	"os"
	"testing"

	"github.com/tandem-cobrowse/tandem/pkg/leakcheck"
)

func TestMain(m *testing.M) { os.Exit(leakcheck.Run(m)) }
