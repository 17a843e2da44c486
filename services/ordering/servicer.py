"""gRPC servicer: translates requests to the domain and results back. No rules live here."""

from __future__ import annotations

import datetime as dt

from services.common.auth import current_principal
from services.common.events import to_timestamp
from wenming.common.v1 import common_pb2
from wenming.ordering.v1 import ordering_pb2 as pb
from wenming.ordering.v1 import ordering_pb2_grpc

from .app import Ordering
from .policy import policy_msg
from .project_rules import ranking
from .taxonomy_rules import taxonomy_msg
from .translate import (
    activity_msg, competition_msg, credit_incident_msg, credit_standing_msg, menu_item_msg, order_msg, participant_msg,
    plan_comment_msg, plan_msg, project_msg,
)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["OrderingService"].full_name


def _page(token: str) -> common_pb2.PageResponse:
    return common_pb2.PageResponse(next_page_token=token)


def _checkin(kind: str, subject_id: str, issued: tuple[str, float]) -> pb.CheckinCode:
    code, until = issued
    return pb.CheckinCode(code=code, valid_until=to_timestamp(dt.datetime.fromtimestamp(until, dt.UTC)),
                          qr_payload=f"wenming://checkin?{kind}={subject_id}&code={code}")


class OrderingServicer(ordering_pb2_grpc.OrderingServiceServicer):
    def __init__(self, domain: Ordering):
        self.menu = domain.menu
        self.taxonomies = domain.taxonomies
        self.policies = domain.policies
        self.orders = domain.orders
        self.queries = domain.queries
        self.trends = domain.trends
        self.activities = domain.activities
        self.projects = domain.projects
        self.competitions = domain.competitions
        self.credit = domain.credit
        self.plans = domain.plans

    def _order(self, order, with_trail: bool = False) -> pb.Order:
        return order_msg(order, self.orders.contact_view(current_principal(), order), with_trail=with_trail)

    # menu

    def PublishMenuItem(self, request, context):
        return pb.PublishMenuItemResponse(item=menu_item_msg(self.menu.publish(current_principal(), request)))

    def RetireMenuItem(self, request, context):
        item = self.menu.retire(current_principal(), request.item_id, request.reason)
        return pb.RetireMenuItemResponse(item=menu_item_msg(item))

    def GetMenuItem(self, request, context):
        return pb.GetMenuItemResponse(item=menu_item_msg(self.menu.read(current_principal(), request.item_id)))

    def ListMenu(self, request, context):
        items, token = self.menu.list(current_principal(), request)
        return pb.ListMenuResponse(items=[menu_item_msg(i) for i in items], page=_page(token))

    def GetDistrictTaxonomy(self, request, context):
        return pb.GetDistrictTaxonomyResponse(taxonomy=taxonomy_msg(self.taxonomies.read(current_principal())))

    def SetDistrictTaxonomy(self, request, context):
        return pb.SetDistrictTaxonomyResponse(taxonomy=taxonomy_msg(self.taxonomies.set(current_principal(), request)))

    # policy

    def GetOrderPolicy(self, request, context):
        return pb.GetOrderPolicyResponse(policy=policy_msg(self.policies.read(current_principal())))

    def SetOrderPolicy(self, request, context):
        return pb.SetOrderPolicyResponse(policy=policy_msg(self.policies.set(current_principal(), request)))

    # orders

    def PlaceOrder(self, request, context):
        return pb.PlaceOrderResponse(order=self._order(self.orders.place(current_principal(), request)))

    def AcknowledgeOrder(self, request, context):
        return pb.AcknowledgeOrderResponse(order=self._order(self.orders.acknowledge(current_principal(),
                                                                                    request.order_id)))

    def EscalateOrder(self, request, context):
        order = self.orders.escalate(current_principal(), request.order_id, request.reason)
        return pb.EscalateOrderResponse(order=self._order(order))

    def HandOverOrder(self, request, context):
        return pb.HandOverOrderResponse(order=self._order(self.orders.hand_over(current_principal(), request)))

    def DispatchOrder(self, request, context):
        return pb.DispatchOrderResponse(order=self._order(self.orders.dispatch(current_principal(), request)))

    def OpenOrder(self, request, context):
        return pb.OpenOrderResponse(order=self._order(self.orders.open(current_principal(), request.order_id)))

    def ClaimOrder(self, request, context):
        return pb.ClaimOrderResponse(order=self._order(self.orders.claim(current_principal(), request.order_id)))

    def AcceptOrder(self, request, context):
        return pb.AcceptOrderResponse(order=self._order(self.orders.accept(current_principal(), request.order_id)))

    def DeclineOrder(self, request, context):
        order = self.orders.decline(current_principal(), request.order_id, request.reason)
        return pb.DeclineOrderResponse(order=self._order(order))

    def IssueOrderCheckinCode(self, request, context):
        issued = self.orders.issue_code(current_principal(), request.order_id)
        return pb.IssueOrderCheckinCodeResponse(checkin=_checkin("order", request.order_id, issued))

    def CheckInOrder(self, request, context):
        order = self.orders.check_in(current_principal(), request.order_id, request.code)
        return pb.CheckInOrderResponse(order=self._order(order))

    def CheckOutOrder(self, request, context):
        return pb.CheckOutOrderResponse(order=self._order(self.orders.check_out(current_principal(), request)))

    def ConfirmOrderHours(self, request, context):
        return pb.ConfirmOrderHoursResponse(order=self._order(self.orders.confirm_hours(current_principal(), request)))

    def RateOrder(self, request, context):
        return pb.RateOrderResponse(order=self._order(self.orders.rate(current_principal(), request)))

    def CloseOrder(self, request, context):
        return pb.CloseOrderResponse(order=self._order(self.orders.close(current_principal(), request.order_id)))

    def CancelOrder(self, request, context):
        order = self.orders.cancel(current_principal(), request.order_id, request.reason)
        return pb.CancelOrderResponse(order=self._order(order))

    def RejectOrder(self, request, context):
        order = self.orders.reject(current_principal(), request.order_id, request.reason)
        return pb.RejectOrderResponse(order=self._order(order))

    def SuggestVolunteers(self, request, context):
        scored, eligible = self.queries.suggest(current_principal(), request)
        return pb.SuggestVolunteersResponse(eligible=eligible, candidates=[
            pb.Candidate(volunteer_id=s.volunteer["_id"], volunteer_number=s.volunteer.get("number", ""),
                         name=s.volunteer.get("name", ""), score=s.score, factors=s.factors, active_orders=s.active,
                         stars=s.stars)
            for s in scored])

    # order queries

    def GetOrder(self, request, context):
        return pb.GetOrderResponse(order=self._order(self.queries.get(current_principal(), request.order_id), with_trail=True))

    def ListMyOrders(self, request, context):
        orders, token = self.queries.my_orders(current_principal(), request)
        return pb.ListMyOrdersResponse(orders=[self._order(o) for o in orders], page=_page(token))

    def ListMyTasks(self, request, context):
        orders, token = self.queries.my_tasks(current_principal(), request)
        return pb.ListMyTasksResponse(orders=[self._order(o) for o in orders], page=_page(token))

    def ListClaimableOrders(self, request, context):
        orders, token = self.queries.claimable(current_principal(), request)
        return pb.ListClaimableOrdersResponse(orders=[self._order(o) for o in orders], page=_page(token))

    def ListUnitQueue(self, request, context):
        orders, token = self.queries.unit_queue(current_principal(), request)
        return pb.ListUnitQueueResponse(orders=[self._order(o) for o in orders], page=_page(token))

    def GetOrderStats(self, request, context):
        stats = self.queries.stats(current_principal(), request.unit_id)
        return pb.GetOrderStatsResponse(
            in_progress=[pb.OrderCount(status=status, level=level, count=n)
                         for (status, level), n in sorted(stats.in_progress.items())],
            overdue=stats.overdue, sla_breaches_last_30_days=stats.sla_breaches)

    def GetOrderTrends(self, request, context):
        trends = self.trends.trends(current_principal(), request)
        return pb.GetOrderTrendsResponse(
            buckets=[pb.TrendBucket(start=to_timestamp(b.start), placed=b.placed, dispatched=b.dispatched,
                                    completed=b.completed, rated=b.rated, cancelled=b.cancelled)
                     for b in trends.buckets],
            funnel=[pb.FunnelStage(stage=s.stage, label=s.label, orders=s.orders,
                                   avg_seconds_from_previous=s.avg_seconds) for s in trends.funnel])

    # activities

    def _activity(self, activity, principal) -> pb.Activity:
        visible = None if principal.manages(activity.unit.path) else [principal.subject]
        return activity_msg(activity, visible)

    def PlanActivity(self, request, context):
        principal = current_principal()
        return pb.PlanActivityResponse(activity=self._activity(self.activities.plan(principal, request), principal))

    def PublishActivity(self, request, context):
        principal = current_principal()
        activity = self.activities.publish(principal, request.activity_id)
        return pb.PublishActivityResponse(activity=self._activity(activity, principal))

    def CancelActivity(self, request, context):
        principal = current_principal()
        activity = self.activities.cancel(principal, request.activity_id, request.reason)
        return pb.CancelActivityResponse(activity=self._activity(activity, principal))

    def GetActivity(self, request, context):
        activity, visible = self.activities.get(current_principal(), request.activity_id)
        return pb.GetActivityResponse(activity=activity_msg(activity, visible))

    def ListActivities(self, request, context):
        principal = current_principal()
        activities, token = self.activities.list(principal, request)
        return pb.ListActivitiesResponse(activities=[self._activity(a, principal) for a in activities],
                                         page=_page(token))

    def SignUpActivity(self, request, context):
        principal = current_principal()
        activity = self.activities.sign_up(principal, request.activity_id)
        return pb.SignUpActivityResponse(activity=self._activity(activity, principal))

    def IssueActivityCheckinCode(self, request, context):
        issued = self.activities.issue_code(current_principal(), request.activity_id)
        return pb.IssueActivityCheckinCodeResponse(checkin=_checkin("activity", request.activity_id, issued))

    def CheckInActivity(self, request, context):
        principal = current_principal()
        activity = self.activities.check_in(principal, request.activity_id, request.code)
        return pb.CheckInActivityResponse(activity=self._activity(activity, principal))

    def GetActivityPass(self, request, context):
        principal = current_principal()
        activity, code = self.activities.get_pass(principal, request.activity_id)
        return pb.GetActivityPassResponse(
            pass_code=code, qr_payload=f"wenming://activity-pass?activity={activity.id}&code={code}",
            attended=activity.participants[principal.subject].attended_at is not None)

    def RecordActivityAttendance(self, request, context):
        principal = current_principal()
        activity, participant_id = self.activities.record_attendance(principal, request)
        return pb.RecordActivityAttendanceResponse(
            activity=self._activity(activity, principal),
            participant=participant_msg(participant_id, activity.participants[participant_id]))

    def RateActivity(self, request, context):
        principal = current_principal()
        return pb.RateActivityResponse(activity=self._activity(self.activities.rate(principal, request), principal))

    def CompleteActivity(self, request, context):
        principal = current_principal()
        activity = self.activities.complete(principal, request)
        return pb.CompleteActivityResponse(activity=self._activity(activity, principal))

    # projects (志愿服务项目库) and competitions (项目大赛)

    def ProposeProject(self, request, context):
        return pb.ProposeProjectResponse(project=project_msg(self.projects.propose(current_principal(), request)))

    def MoveProject(self, request, context):
        return pb.MoveProjectResponse(project=project_msg(self.projects.move(current_principal(), request)))

    def ReportProjectProgress(self, request, context):
        project = self.projects.report_progress(current_principal(), request)
        return pb.ReportProjectProgressResponse(project=project_msg(project))

    def LinkProjectWork(self, request, context):
        return pb.LinkProjectWorkResponse(project=project_msg(self.projects.link_work(current_principal(), request)))

    def GetProject(self, request, context):
        project, outcome = self.projects.get(current_principal(), request.project_id)
        return pb.GetProjectResponse(project=project_msg(project, outcome))

    def ListProjects(self, request, context):
        projects, token = self.projects.list(current_principal(), request)
        return pb.ListProjectsResponse(projects=[project_msg(p) for p in projects], page=_page(token))

    def _competition(self, competition) -> pb.Competition:
        return competition_msg(competition, ranking(competition))

    def CreateCompetition(self, request, context):
        competition = self.competitions.create(current_principal(), request)
        return pb.CreateCompetitionResponse(competition=self._competition(competition))

    def ScoreCompetitionProject(self, request, context):
        competition = self.competitions.score(current_principal(), request)
        return pb.ScoreCompetitionProjectResponse(competition=self._competition(competition))

    def CloseCompetition(self, request, context):
        competition = self.competitions.close(current_principal(), request.competition_id)
        return pb.CloseCompetitionResponse(competition=self._competition(competition))

    def GetCompetition(self, request, context):
        competition = self.competitions.get(current_principal(), request.competition_id)
        return pb.GetCompetitionResponse(competition=self._competition(competition))

    # volunteer credit (志愿者信用)

    def RecordCreditIncident(self, request, context):
        return pb.RecordCreditIncidentResponse(incident=credit_incident_msg(self.credit.record(current_principal(),
                                                                                               request)))

    def AppealCreditIncident(self, request, context):
        return pb.AppealCreditIncidentResponse(incident=credit_incident_msg(self.credit.appeal(current_principal(),
                                                                                               request)))

    def DecideCreditAppeal(self, request, context):
        return pb.DecideCreditAppealResponse(incident=credit_incident_msg(self.credit.decide(current_principal(),
                                                                                             request)))

    def ListCreditIncidents(self, request, context):
        principal = current_principal()
        incidents, token, standing = self.credit.list_for(principal, request)
        names = self.credit.names(principal.district_id, incidents)
        return pb.ListCreditIncidentsResponse(
            incidents=[credit_incident_msg(i, names.get(i["volunteer_id"], "")) for i in incidents], page=_page(token),
            standing=credit_standing_msg(standing))

    # activity plans

    def CreateActivityPlan(self, request, context):
        return pb.CreateActivityPlanResponse(plan=plan_msg(self.plans.create(current_principal(), request)))

    def SetActivityPlanEntries(self, request, context):
        return pb.SetActivityPlanEntriesResponse(plan=plan_msg(self.plans.set_entries(current_principal(), request)))

    def LinkActivityPlanEntry(self, request, context):
        return pb.LinkActivityPlanEntryResponse(plan=plan_msg(self.plans.link_entry(current_principal(), request)))

    def OpenActivityPlanConsultation(self, request, context):
        plan = self.plans.open_consultation(current_principal(), request)
        return pb.OpenActivityPlanConsultationResponse(plan=plan_msg(plan))

    def CommentOnActivityPlan(self, request, context):
        comment = self.plans.comment(current_principal(), request)
        return pb.CommentOnActivityPlanResponse(comment=plan_comment_msg(comment))

    def ListActivityPlanComments(self, request, context):
        comments, token = self.plans.list_comments(current_principal(), request)
        return pb.ListActivityPlanCommentsResponse(comments=[plan_comment_msg(c) for c in comments], page=_page(token))

    def PublishActivityPlan(self, request, context):
        return pb.PublishActivityPlanResponse(plan=plan_msg(self.plans.publish(current_principal(), request.plan_id)))

    def ReviseActivityPlan(self, request, context):
        return pb.ReviseActivityPlanResponse(plan=plan_msg(self.plans.revise(current_principal(), request.plan_id)))

    def GetActivityPlan(self, request, context):
        return pb.GetActivityPlanResponse(plan=plan_msg(self.plans.get(current_principal(), request.plan_id)))

    def ListActivityPlans(self, request, context):
        plans, token = self.plans.list(current_principal(), request)
        return pb.ListActivityPlansResponse(plans=[plan_msg(p) for p in plans], page=_page(token))
