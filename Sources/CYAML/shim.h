// libyaml from the system (Debian: libyaml-dev). OnAir reads schedules through its event API,
// which Yams does not expose, so that no whole-document node tree is ever built.
#include <yaml.h>
