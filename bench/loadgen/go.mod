module lanterna/bench/loadgen

go 1.19
