module go_http
go 1.19
