%% The Erlang/OTP reference for hotswap's benchmarks (host/benches/runtime.rs): the same
%% workloads, each run 3 times, printing the median as `RESULT <key> <value>` with the same keys,
%% so bench/run.sh can print the ratios. Run: erl +P 2000000 -noshell -eval 'hotswap_bench:main(), halt().'
-module(hotswap_bench).
-export([main/0, idle/0, pong/0, sink/2, send_n/2, player/1]).

main() ->
    Scale = case os:getenv("HOTSWAP_BENCH_SCALE") of false -> 1; S -> list_to_integer(S) end,
    io:format("Erlang/OTP ~s, ~p schedulers~n", [erlang:system_info(otp_release), erlang:system_info(schedulers_online)]),
    [spawn_bench(N) || N <- case Scale >= 10 of true -> [100000, 1000000]; false -> [100000] end],
    pingpong(),
    [fanin(S) || S <- [1, 16, 256]],
    [pairs(P) || P <- [1, 16, 10000]],
    [swap(N) || N <- [1, 1000, 100000]],
    upgrade(1000),
    ok.

result(Key, Value) -> io:format("RESULT ~s ~.3f~n", [Key, float(Value)]).
median(L) -> lists:nth((length(L) + 1) div 2, lists:sort(L)).
runs(F) -> median([F() || _ <- [1, 2, 3]]).
now_us() -> erlang:monotonic_time(microsecond).

%% Spawn N processes that wait in `receive`: time per spawn and memory per process.
idle() -> receive stop -> ok end.
spawn_bench(N) ->
    Run = fun() ->
        erlang:garbage_collect(),
        M0 = erlang:memory(total),
        T0 = now_us(),
        Pids = [spawn(fun ?MODULE:idle/0) || _ <- lists:seq(1, N)],
        T1 = now_us(),
        M1 = erlang:memory(total),
        [exit(P, kill) || P <- Pids],
        {(T1 - T0) / N, (M1 - M0) / N}
    end,
    Rs = [Run() || _ <- [1, 2, 3]],
    Us = median([U || {U, _} <- Rs]),
    Mem = median([M || {_, M} <- Rs]),
    io:format("spawn ~p: ~.2f us/process, ~.1f bytes/process~n", [N, Us, Mem]),
    result(io_lib:format("spawn_us_per_process@~p", [N]), Us),
    result(io_lib:format("memory_bytes_per_process@~p", [N]), Mem).

%% Ping-pong round trip.
pong() -> receive {From, ping} -> From ! pong, pong(); stop -> ok end.
ping(_, 0) -> ok;
ping(P, N) -> P ! {self(), ping}, receive pong -> ping(P, N - 1) end.
pingpong() ->
    R = 100000,
    Rtt = runs(fun() ->
        P = spawn(fun ?MODULE:pong/0),
        T0 = now_us(), ping(P, R), T1 = now_us(),
        P ! stop,
        (T1 - T0) / R
    end),
    io:format("ping-pong round trip ~.3f us~n", [Rtt]),
    result("pingpong_rtt_us", Rtt).

%% S senders -> 1 receiver.
sink(0, Parent) -> Parent ! done;
sink(N, Parent) -> receive _ -> sink(N - 1, Parent) end.
send_n(_, 0) -> ok;
send_n(P, N) -> P ! N, send_n(P, N - 1).
fanin(S) ->
    Per = 400000 div S,
    Rate = runs(fun() ->
        Self = self(),
        Sink = spawn(fun() -> sink(Per * S, Self) end),
        T0 = now_us(),
        [spawn(fun() -> send_n(Sink, Per) end) || _ <- lists:seq(1, S)],
        receive done -> ok end,
        Per * S / ((now_us() - T0) / 1.0e6)
    end),
    io:format("fan-in ~p senders: ~.2f M msgs/s~n", [S, Rate / 1.0e6]),
    result(io_lib:format("fanin_msgs_per_s@~p", [S]), Rate).

%% P ping-pong pairs at once, each bouncing a ball from R down to 0 (R + 1 messages).
player(Parent) ->
    receive
        {_, 0} -> Parent ! done;
        {From, 1} -> From ! {self(), 0};
        {From, K} -> From ! {self(), K - 1}, player(Parent)
    end.
wait_n(0) -> ok;
wait_n(N) -> receive done -> wait_n(N - 1) end.
pairs(P) ->
    R = max(20, 200000 div P),
    Rate = runs(fun() ->
        Self = self(),
        T0 = now_us(),
        [begin
             A = spawn(fun() -> player(Self) end),
             B = spawn(fun() -> player(Self) end),
             B ! {A, R}
         end || _ <- lists:seq(1, P)],
        wait_n(P),
        (R + 1) * P / ((now_us() - T0) / 1.0e6)
    end),
    io:format("~p pairs: ~.2f M msgs/s~n", [P, Rate / 1.0e6]),
    result(io_lib:format("pairs_msgs_per_s@~p", [P]), Rate).

%% Code reload reaching N looping processes: load v2 while they wait in v1's loop, then one
%% message round; they continue in v2 through the fully qualified call. A second round checks
%% that every process answers from v2 (none killed, none lost).
forms(Lines) ->
    [begin {ok, Toks, _} = erl_scan:string(L), {ok, F} = erl_parse:parse_form(Toks), F end || L <- Lines].
swapee(Vsn) ->
    V = integer_to_list(Vsn),
    {ok, swapee, Bin} = compile:forms(forms([
        "-module(swapee).",
        "-export([start/0, loop/1]).",
        "start() -> loop(0).",
        "loop(S) -> receive {From, which} -> From ! {self(), " ++ V ++ ", S}, swapee:loop(S + 1); stop -> ok end."
    ]), [binary]),
    Bin.
collect(0, Acc) -> Acc;
collect(N, Acc) -> receive {_, Vsn, _} -> collect(N - 1, [Vsn | Acc]) after 10000 -> Acc end.
swap(N) ->
    Run = fun() ->
        code:purge(swapee), code:delete(swapee), code:purge(swapee),
        {module, swapee} = code:load_binary(swapee, "swapee.erl", swapee(1)),
        Pids = [spawn(swapee, start, []) || _ <- lists:seq(1, N)],
        V2 = swapee(2),
        T0 = now_us(),
        {module, swapee} = code:load_binary(swapee, "swapee.erl", V2),
        [P ! {self(), which} || P <- Pids],
        First = collect(N, []),
        T1 = now_us(),
        [P ! {self(), which} || P <- Pids],
        Second = collect(N, []),
        [P ! stop || P <- Pids],
        Lost = N - length(First) + (N - length([V || V <- Second, V =:= 2])),
        {(T1 - T0) / 1000, Lost}
    end,
    Rs = [Run() || _ <- [1, 2, 3]],
    Ms = median([M || {M, _} <- Rs]),
    Lost = lists:max([L || {_, L} <- Rs]),
    io:format("reload reaching ~p processes: ~.2f ms, lost ~p~n", [N, Ms, Lost]),
    result(io_lib:format("swap_all_ms@~p", [N]), Ms),
    result(io_lib:format("swap_lost@~p", [N]), Lost).

%% Synchronized upgrade with state migration of N gen_servers (sys:suspend / change_code / resume).
gen_server_src(Vsn) ->
    {ok, bench_gs, Bin} = compile:forms(forms([
        "-module(bench_gs).",
        "-behaviour(gen_server).",
        "-vsn(" ++ integer_to_list(Vsn) ++ ").",
        "-export([init/1, handle_call/3, handle_cast/2, code_change/3]).",
        "init(_) -> {ok, {0}}.",
        "handle_call(get, _From, S) -> {reply, S, S}.",
        "handle_cast(_, S) -> {noreply, S}.",
        "code_change(_Old, {C}, _Extra) -> {ok, {C, migrated}}; code_change(_Old, S, _Extra) -> {ok, S}."
    ]), [binary]),
    Bin.
upgrade(N) ->
    Ms = runs(fun() ->
        code:purge(bench_gs), code:delete(bench_gs), code:purge(bench_gs),
        {module, bench_gs} = code:load_binary(bench_gs, "bench_gs.erl", gen_server_src(1)),
        Pids = [element(2, gen_server:start(bench_gs, [], [])) || _ <- lists:seq(1, N)],
        V2 = gen_server_src(2),
        T0 = now_us(),
        [sys:suspend(P) || P <- Pids],
        {module, bench_gs} = code:load_binary(bench_gs, "bench_gs.erl", V2),
        [ok = sys:change_code(P, bench_gs, undefined, []) || P <- Pids],
        [sys:resume(P) || P <- Pids],
        T1 = now_us(),
        {_, migrated} = gen_server:call(hd(Pids), get),
        [gen_server:stop(P) || P <- Pids],
        (T1 - T0) / 1000
    end),
    io:format("synchronized upgrade of ~p gen_servers: ~.2f ms (~.2f us/process)~n", [N, Ms, Ms * 1000 / N]),
    result(io_lib:format("upgrade_ms@~p", [N]), Ms),
    result(io_lib:format("upgrade_us_per_process@~p", [N]), Ms * 1000 / N).
