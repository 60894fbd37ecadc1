# Varnish configuration for the http-cache-tests baseline (baseline-varnish.sh renders it).
#
# As in the suite's docker image: Debian's stock /etc/varnish/default.vcl (empty subroutines,
# so Varnish's built-in VCL decides) with the backend pointed at the suite's server; varnishd
# itself runs with -p default_ttl=0 -p default_grace=0 -p default_keep=3600 -s malloc,64M
# (see baseline-varnish.sh), so nothing is cached without freshness from the origin.
#
# Placeholder filled in by baseline-varnish.sh: @ORIGIN_PORT@ (port of the suite's server).
vcl 4.1;

backend default {
    .host = "127.0.0.1";
    .port = "@ORIGIN_PORT@";
}

sub vcl_recv {
}

sub vcl_backend_response {
}

sub vcl_deliver {
}
