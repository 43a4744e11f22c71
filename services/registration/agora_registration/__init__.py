"""Agora's registration service: participants, accreditation, badges, presence at the venue
and workshop enrolment with capacity and waitlist."""
