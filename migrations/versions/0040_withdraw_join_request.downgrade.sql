-- =============================================================================
-- 0040 downgrade: withdraw_join_request and its rate-limit rule removed.
-- =============================================================================

drop function public.withdraw_join_request(text);
drop function watchium_rpc.withdraw_join_request(text);
delete from watchium_private.rate_limit_rules where action = 'withdraw_join_request';
