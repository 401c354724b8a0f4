-- Which machine (kernel boot) and process namespace an instance runs in:
-- a new instance frees at once what a dead predecessor on its own machine
-- held (its pid is gone there), instead of waiting a lease; an instance
-- on another machine is waited for, since its pid says nothing here.
ALTER TABLE instances ADD COLUMN node TEXT NOT NULL DEFAULT '';
