# Varnish under test in benches/compare/run.sh (which fills @UPSTREAM_PORT@).
#
# CORS-safe and comparable with the others: the hash includes Origin (on top of Varnish's own
# Vary handling), and CORS preflights are cached, keyed by Origin, the requested method and
# the requested headers (the built-in VCL passes OPTIONS, and a lookup would turn the backend
# request into a GET, so the method is restored for the fetch). X-Cache: HIT or MISS for the
# load generator.
vcl 4.1;

backend default {
    .host = "127.0.0.1";
    .port = "@UPSTREAM_PORT@";
}

sub vcl_recv {
    unset req.http.X-Bench-Method;
    if (req.method == "OPTIONS" && req.http.Origin && req.http.Access-Control-Request-Method) {
        set req.http.X-Bench-Method = "OPTIONS";
        return (hash);
    }
}

sub vcl_hash {
    hash_data(req.http.Origin);
    if (req.http.X-Bench-Method == "OPTIONS") {
        hash_data("preflight");
        hash_data(req.http.Access-Control-Request-Method);
        hash_data(req.http.Access-Control-Request-Headers);
    }
    # falls through to the built-in vcl_hash: URL and Host
}

sub vcl_backend_fetch {
    if (bereq.http.X-Bench-Method == "OPTIONS") {
        set bereq.method = "OPTIONS";
    }
    unset bereq.http.X-Bench-Method;
}

sub vcl_deliver {
    if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
}
