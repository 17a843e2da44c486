"""Training's own Prometheus metrics, beside the kit's RPC, outbox and consumer metrics.

Pass rate = training_quiz_attempts_total{outcome="passed"} / sum(training_quiz_attempts_total),
or per trainee: training_trainees_finished_total{outcome="passed"} / sum(…finished_total).
"""

from prometheus_client import Counter, Gauge

ENROLLMENTS = Counter("training_enrollments_total", "Enrollment changes",
                      ["outcome"])  # enrolled, waitlisted, promoted, cancelled
ATTENDANCE = Counter("training_attendance_total", "Attendances recorded", ["method"])  # qr_code, organizer
QUIZ_ATTEMPTS = Counter("training_quiz_attempts_total", "Quiz attempts", ["outcome"])  # passed, failed
TRAINEES_FINISHED = Counter("training_trainees_finished_total", "Trainees' final outcome in a session",
                            ["outcome"])  # passed, failed, absent
COMPLETIONS = Counter("training_course_completions_total", "Courses completed", ["source"])  # session, historical
TIME_CREDITED = Counter("training_time_credited_seconds_total", "Training time credited to attendees")
CERTIFICATIONS = Counter("training_certifications_total", "Certification changes",
                         ["change"])  # granted, revoked, expired
SESSIONS = Counter("training_sessions_total", "Session lifecycle", ["change"])  # scheduled, closed, cancelled
ROTATION = Gauge("training_rotation_volunteers", "Volunteers by rotation plan and status, per district "
                 "(set by the rotation-metrics job)", ["district_id", "plan", "status"])
