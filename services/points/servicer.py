"""gRPC servicer: translates requests to the domain and results back. No rules live here."""

from __future__ import annotations

from services.common.auth import current_principal
from services.common.exports import ExportJobs, job_msg
from wenming.common.v1 import common_pb2
from wenming.points.v1 import points_pb2 as pb
from wenming.points.v1 import points_pb2_grpc

from .certificate_export import start_certificates
from .exports import start_hours
from .certificates import Certificates, certificate_msg, facts_msg, render_html
from .commendations import Commendations, commendation_msg
from .grading import Grading, assessment_msg, evidence_msg
from .ledger import Ledger
from .monthly_report import MonthlyReports, start_monthly_report
from .perks import Perks, merchant_msg
from .rulebook import RuleBook
from .scorecard_export import start_scorecards
from .scorecards import Boards
from .store import Store
from .translate import account_msg, entry_msg, item_msg, redemption_msg, rules_msg

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["PointsService"].full_name
PUBLIC_METHODS = ("VerifyCertificate",)


def _page(token: str) -> common_pb2.PageResponse:
    return common_pb2.PageResponse(next_page_token=token)


class PointsServicer(points_pb2_grpc.PointsServiceServicer):
    def __init__(self, ledger: Ledger, rules: RuleBook, store: Store, boards: Boards, certificates: Certificates,
                 exports: ExportJobs, grading: Grading, commendations: Commendations, monthly: MonthlyReports,
                 perks: Perks):
        self.ledger = ledger
        self.exports = exports
        self.rules = rules
        self.store = store
        self.boards = boards
        self.certificates = certificates
        self.grading = grading
        self.commendations = commendations
        self.monthly = monthly
        self.perks = perks

    def _holder(self, account_id: str):
        """For the volunteer number shown with an account."""
        return self.ledger.directory.holder(current_principal().district_id, account_id)

    # ledgers

    def GetAccount(self, request, context):
        account, holder = self.ledger.get_account(current_principal(), request.account_id)
        return pb.GetAccountResponse(account=account_msg(account, holder))

    def ListLedgerEntries(self, request, context):
        entries, token = self.ledger.list_entries(current_principal(), request)
        return pb.ListLedgerEntriesResponse(entries=[entry_msg(e) for e in entries], page=_page(token))

    def AddManualHours(self, request, context):
        entry, account = self.ledger.add_manual_hours(current_principal(), request)
        return pb.AddManualHoursResponse(entry=entry_msg(entry), account=account_msg(account, self._holder(
            account["_id"])))

    def AdjustPoints(self, request, context):
        entry, account = self.ledger.adjust_points(current_principal(), request)
        return pb.AdjustPointsResponse(entry=entry_msg(entry), account=account_msg(account, self._holder(
            account["_id"])))

    def ReverseEntry(self, request, context):
        entry, account = self.ledger.reverse(current_principal(), request)
        return pb.ReverseEntryResponse(reversal=entry_msg(entry), account=account_msg(account, self._holder(
            account["_id"])))

    def AuditAccount(self, request, context):
        books, count = self.ledger.audit(current_principal(), request.account_id)
        consistent = all(b.stored == b.from_entries + b.in_flight for b in books)
        return pb.AuditAccountResponse(books=books, consistent=consistent, entries=count)

    # rules

    def GetPointRules(self, request, context):
        return pb.GetPointRulesResponse(rules=rules_msg(self.rules.get(current_principal())))

    def SetPointRules(self, request, context):
        return pb.SetPointRulesResponse(rules=rules_msg(self.rules.set(current_principal(), request)))

    # store

    def CreateStoreItem(self, request, context):
        return pb.CreateStoreItemResponse(item=item_msg(self.store.create_item(current_principal(), request)))

    def UpdateStoreItem(self, request, context):
        return pb.UpdateStoreItemResponse(item=item_msg(self.store.update_item(current_principal(), request)))

    def RestockStoreItem(self, request, context):
        return pb.RestockStoreItemResponse(item=item_msg(self.store.restock(current_principal(), request)))

    def ListStoreItems(self, request, context):
        principal = current_principal()
        items, token = self.store.list_items(principal, request)
        stars, prices = self.store.prices_for(principal, items)
        return pb.ListStoreItemsResponse(items=[item_msg(i, prices.get(i["_id"]), stars) for i in items],
                                         page=_page(token))

    def Redeem(self, request, context):
        return pb.RedeemResponse(redemption=redemption_msg(self.store.redeem(current_principal(), request)))

    def GetRedemption(self, request, context):
        return pb.GetRedemptionResponse(redemption=redemption_msg(self.store.get(current_principal(),
                                                                                 request.redemption_id)))

    def ListRedemptions(self, request, context):
        found, token = self.store.list(current_principal(), request)
        return pb.ListRedemptionsResponse(redemptions=[redemption_msg(r) for r in found], page=_page(token))

    def CollectRedemption(self, request, context):
        return pb.CollectRedemptionResponse(redemption=redemption_msg(self.store.collect(current_principal(),
                                                                                         request.code)))

    def RefundRedemption(self, request, context):
        redemption = self.store.refund(current_principal(), request.redemption_id, request.reason)
        return pb.RefundRedemptionResponse(redemption=redemption_msg(redemption))

    # leaderboards

    def GetLeaderboard(self, request, context):
        return pb.GetLeaderboardResponse(rows=self.boards.leaderboard(current_principal(), request))

    # the monthly statistics report (月报)

    def GetMonthlyReport(self, request, context):
        return pb.GetMonthlyReportResponse(report=self.monthly.get(current_principal(), request))

    # 三级创建 grading

    def GetUnitGrade(self, request, context):
        grade, history = self.grading.grade(current_principal(), request)
        return pb.GetUnitGradeResponse(grade=grade, history=[assessment_msg(a) for a in history])

    def GetUnitScorecard(self, request, context):  # deprecated: GetUnitGrade's grade in the old shape
        return pb.GetUnitScorecardResponse(scorecard=self.grading.scorecard(current_principal(), request))

    def RecordGradeEvidence(self, request, context):
        return pb.RecordGradeEvidenceResponse(evidence=evidence_msg(self.grading.record_evidence(
            current_principal(), request)))

    def AssessUnitGrade(self, request, context):
        return pb.AssessUnitGradeResponse(assessment=assessment_msg(self.grading.assess(current_principal(),
                                                                                        request)))

    # certificates

    def IssueCertificate(self, request, context):
        return pb.IssueCertificateResponse(certificate=certificate_msg(self.certificates.issue(current_principal(),
                                                                                               request)))

    def GetCertificate(self, request, context):
        cert = self.certificates.get(current_principal(), request.number)
        return pb.GetCertificateResponse(certificate=certificate_msg(cert), html=render_html(cert, with_name=True))

    def ListCertificates(self, request, context):
        found, token = self.certificates.list_for(current_principal(), request)
        return pb.ListCertificatesResponse(certificates=[facts_msg(c) for c in found], page=_page(token))

    def VerifyCertificate(self, request, context):
        return pb.VerifyCertificateResponse(facts=facts_msg(self.certificates.verify(request.number)))

    # commendations (表彰/嘉许)

    def RecordCommendation(self, request, context):
        return pb.RecordCommendationResponse(commendation=commendation_msg(self.commendations.record(
            current_principal(), request)))

    def ListCommendations(self, request, context):
        found, token = self.commendations.list_for(current_principal(), request)
        return pb.ListCommendationsResponse(commendations=[commendation_msg(c) for c in found], page=_page(token))

    def RevokeCommendation(self, request, context):
        return pb.RevokeCommendationResponse(commendation=commendation_msg(self.commendations.revoke(
            current_principal(), request)))

    # 礼遇 and 爱心商家

    def RegisterMerchant(self, request, context):
        principal = current_principal()
        merchant = self.perks.register_merchant(principal, request)
        return pb.RegisterMerchantResponse(merchant=merchant_msg(merchant, self.perks.contact_phone(principal, merchant)))

    def SetMerchantStatus(self, request, context):
        principal = current_principal()
        merchant = self.perks.set_merchant_status(principal, request)
        return pb.SetMerchantStatusResponse(merchant=merchant_msg(merchant, self.perks.contact_phone(principal,
                                                                                                    merchant)))

    def ListMerchants(self, request, context):
        principal = current_principal()
        found, token = self.perks.list_merchants(principal, request)
        return pb.ListMerchantsResponse(merchants=[merchant_msg(m, self.perks.contact_phone(principal, m))
                                                   for m in found], page=_page(token))

    def GetPerkRules(self, request, context):
        return pb.GetPerkRulesResponse(rules=self.perks.rules_msg(current_principal().district_id))

    def SetPerkRules(self, request, context):
        return pb.SetPerkRulesResponse(rules=self.perks.set_rules(current_principal(), request))

    def GetMyPerks(self, request, context):
        return self.perks.my_perks(current_principal(), request)

    # exports

    def StartHoursExport(self, request, context):
        job = start_hours(self.exports, self.ledger.directory, current_principal(), request)
        return pb.StartHoursExportResponse(job=job_msg(job))

    def StartScorecardExport(self, request, context):
        job = start_scorecards(self.exports, self.ledger.directory, current_principal(), request)
        return pb.StartScorecardExportResponse(job=job_msg(job))

    def StartMonthlyReportExport(self, request, context):
        job = start_monthly_report(self.exports, self.monthly, current_principal(), request)
        return pb.StartMonthlyReportExportResponse(job=job_msg(job))

    def StartCertificatesExport(self, request, context):
        job = start_certificates(self.exports, self.ledger.directory, current_principal(), request)
        return pb.StartCertificatesExportResponse(job=job_msg(job))

    def GetExportJob(self, request, context):
        return pb.GetExportJobResponse(job=job_msg(self.exports.get(current_principal(), request.job_id)))

    def DownloadExport(self, request, context):
        for part in self.exports.download(current_principal(), request.job_id):
            yield pb.DownloadExportResponse(part=part)
