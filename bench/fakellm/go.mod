module lanterna/bench/fakellm

go 1.19
