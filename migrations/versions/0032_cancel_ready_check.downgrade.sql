-- =============================================================================
-- 0032 (downgrade): cancel_ready_check goes.
-- =============================================================================
-- squawk-ignore ban-drop-function
drop function public.cancel_ready_check(text);
-- squawk-ignore ban-drop-function
drop function watchium_rpc.cancel_ready_check(text);
