module go_threads
go 1.19
