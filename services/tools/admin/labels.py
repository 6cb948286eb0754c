"""Chinese and English labels of the admin tool: column titles, states, actions, matter
kinds, deadline steps and statuses, grouping dimensions.

A key with no label in the chosen language falls back to English, then to the key itself,
so a value added to the API later still shows (as its enum name) instead of failing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")

# key -> (English, Chinese)
_TEXT: dict[str, tuple[str, str]] = {
    # columns and titles
    "action": ("Step", "环节"),
    "from_state": ("From", "原状态"),
    "to_state": ("To", "新状态"),
    "actor": ("Actor", "办理方"),
    "officer": ("Officer", "承办人"),
    "time": ("Time (China)", "时间（北京时间）"),
    "elapsed": ("Elapsed", "历时"),
    "working_days": ("Working days", "工作日"),
    "deadline": ("Deadline", "期限"),
    "overdue": ("Overdue", "超期"),
    "trace_id": ("Trace id", "追踪 ID"),
    "note": ("Note", "备注"),
    "matter": ("Matter", "委托事项"),
    "case": ("Case", "案件"),
    "requesting_court": ("Requesting court", "委托法院"),
    "entrusted_court": ("Entrusted court", "受托法院"),
    "matter_kind": ("Kind", "事项类型"),
    "state": ("State", "状态"),
    "overdue_step": ("Missed deadline", "超期环节"),
    "due": ("Due", "到期时间"),
    "days_overdue": ("Days overdue", "超期天数"),
    "urge_count": ("Urges", "催办次数"),
    "escalated": ("Escalated", "已督办"),
    "count": ("Matters", "事项数"),
    "ack_mean": ("Ack mean (d)", "平均签收（天）"),
    "complete_mean": ("Handling mean (d)", "平均办理（天）"),
    "complete_median": ("Handling median (d)", "办理中位数（天）"),
    "complete_p90": ("Handling p90 (d)", "办理 P90（天）"),
    "complete_mean_working": ("Handling mean (working d)", "平均办理（工作日）"),
    "on_time_rate": ("Completed on time", "按期办结率"),
    "open_overdue_count": ("Open & overdue now", "在办超期数"),
    "overdue_count": ("Ever overdue", "曾超期数"),
    "completion_rate": ("Completion rate", "完成率"),
    "return_rate": ("Return rate", "退回率"),
    # What the figures count: shown under the statistics table and in the report's summary.
    "figures_defined": (
        "Completed on time: share of the completed matters completed by their FINISH deadline (open, returned"
        " and withdrawn matters are not counted). Open & overdue now: matters not completed, returned or"
        " withdrawn with a deadline of the entrusted court marked overdue (as `overdue` lists them)."
        " Completion and return rates: shares of the finished matters (completed + returned).",
        "按期办结率：已办结事项中在办结期限内办结的比例（在办、退回、撤回的事项不计）。"
        "在办超期数：尚未办结、退回或撤回，且受托法院的期限已被标记超期的事项数（即 overdue 列出的事项）。"
        "完成率、退回率：占已结事项（办结 + 退回）的比例。",
    ),
    "province_pair": ("Provinces (requesting-entrusted)", "省份（委托-受托）"),
    "cross_province": ("Cross-province", "跨省"),
    "month": ("Month", "月份"),
    "rank": ("#", "排名"),
    "yes": ("yes", "是"),
    "no": ("no", "否"),
    "system": ("system", "系统"),
    "all": ("all", "全部"),
    "in_province": ("In-province", "省内"),
    "cross_province_value": ("Cross-province", "跨省"),
    "timeline_title": ("Timeline of {matter}", "{matter} 的办理时间线"),
    "deadlines_title": ("Deadlines", "期限"),
    "overdue_title": ("Overdue matters under {court} (incl. subordinate courts)", "{court} 及下级法院的超期事项"),
    "stats_title": ("Turnaround statistics", "办理时效统计"),
    "no_matters": ("No matter found for {query}", "未找到 {query} 的委托事项"),
    "nothing_overdue": ("Nothing overdue.", "没有超期事项。"),
    "fetching": ("Fetching", "正在读取"),
    "fetched": ("{n} fetched", "已读取 {n} 条"),
    "days_unit": ("d", "天"),
    "hours_unit": ("h", "小时"),
    "minutes_unit": ("m", "分"),
    "status": ("Status", "状态"),
    "step": ("Step", "环节"),
    "source": ("Rule", "依据"),
    # report
    "report_title": ("Delegation turnaround report", "事项委托办理时效报告"),
    "generated": ("Generated {time} (China time)", "生成时间 {time}（北京时间）"),
    "as_of": ("overdue days counted to {time}", "超期天数计至 {time}"),
    "summary": ("Summary", "概览"),
    "ranking_title": ("Courts ranked by average handling time", "受托法院平均办理时长排名"),
    "ranking_note": (
        "Entrusted courts with at least one completed matter, fastest first; on-time and return rates beside.",
        "至少完成一件事项的受托法院，按平均办理时长由短到长排列；右侧为按期办结率和退回率。",
    ),
    "trend_title": ("Monthly trend", "月度趋势"),
    "distribution_title": ("Distribution of completion times", "办结用时分布"),
    "comparison_title": ("In-province vs cross-province", "省内委托与跨省委托对比"),
    "overdue_list_title": ("Overdue matters", "超期事项清单"),
    "matters_delegated": ("Matters delegated", "委托事项数"),
    "mean_days_axis": ("Mean handling time (days)", "平均办理时长（天）"),
    "days_axis": ("Days", "天"),
    "rate_axis": ("Rate", "比率"),
    "completion_time_axis": ("Time to complete (calendar days)", "办结用时（自然日）"),
    "matters_axis": ("Matters", "事项数"),
    "ack_time": ("Time to acknowledge", "签收用时"),
    "complete_time": ("Time to complete", "办结用时"),
    "mean": ("mean", "平均"),
    "median": ("median", "中位数"),
    "p90": ("p90", "P90"),
    "no_data": ("No data yet.", "暂无数据。"),
    "no_data_chart": ("No data", "暂无数据"),
}

_ENUMS: dict[str, dict[str, tuple[str, str]]] = {
    "state": {
        "SUBMITTED": ("Submitted", "已委托"),
        "ACKNOWLEDGED": ("Acknowledged", "已签收"),
        "IN_PROGRESS": ("In progress", "办理中"),
        "RETURNED_FOR_SUPPLEMENT": ("Returned for supplement", "退回补充材料"),
        "COMPLETED": ("Completed", "已办结"),
        "RETURNED": ("Returned", "已退回"),
        "WITHDRAWN": ("Withdrawn", "已撤回"),
        "STATE_UNSPECIFIED": ("-", "-"),
    },
    "action": {
        "SUBMIT": ("Submitted", "发起委托"),
        "ACKNOWLEDGE": ("Acknowledged", "签收"),
        "START": ("Started", "开始办理"),
        "COMPLETE": ("Completed", "办结"),
        "RETURN_FOR_SUPPLEMENT": ("Returned for supplement", "退回补充材料"),
        "SUPPLEMENT": ("Supplemented", "补充材料"),
        "RETURN": ("Returned", "退回"),
        "WITHDRAW": ("Withdrawn", "撤回"),
        "DEEM_WITHDRAWN": ("Deemed withdrawn", "视为撤回"),
        "URGE": ("Urged", "催办"),
        "EXTEND_DEADLINE": ("Deadline extended", "延长期限"),
        "DUE_SOON": ("Due soon", "即将到期"),
        "OVERDUE": ("Overdue", "超期"),
        "ESCALATE": ("Escalated", "督办"),
    },
    "matter_kind": {
        "DEPOSITS": ("Deposits", "存款及理财产品"),
        "EQUITY": ("Equity", "股权及投资权益"),
        "REAL_ESTATE_OR_REGISTERED_MOVABLES": ("Real estate / registered movables", "不动产及登记动产"),
        "PROPERTY_INVESTIGATION": ("Property investigation", "财产调查"),
        "SERVICE_OF_DOCUMENTS": ("Service of documents", "送达文书"),
        "CONTROL_MEASURES": ("Control measures", "控制措施"),
        "OTHER": ("Other", "其他"),
    },
    "step": {
        "ACKNOWLEDGE": ("Acknowledge", "签收"),
        "START": ("Start", "开始办理"),
        "FINISH": ("Finish", "办结"),
        "REPORT_STATUS": ("Report status", "报告进展"),
        "SUPPLEMENT": ("Supplement", "补充材料"),
    },
    "deadline_status": {
        "OPEN": ("open", "进行中"),
        "MET": ("met", "按期"),
        "OVERDUE": ("OVERDUE", "已超期"),
        "MET_LATE": ("met late", "逾期完成"),
        "CANCELLED": ("cancelled", "已取消"),
    },
    "dimension": {
        "entrusted_court": ("Entrusted court", "受托法院"),
        "requesting_court": ("Requesting court", "委托法院"),
        "province_pair": ("Provinces (requesting-entrusted)", "省份（委托-受托）"),
        "cross_province": ("Cross-province", "跨省"),
        "matter_kind": ("Kind", "事项类型"),
        "month": ("Month", "月份"),
    },
}


@dataclass(frozen=True)
class Labels:
    """Labels in one language: `labels("time")`, `labels.enum("state", "COMPLETED")`."""

    lang: Lang = "en"

    def __call__(self, key: str, **values: object) -> str:
        pair = _TEXT.get(key)
        text = key if pair is None else pair[self._index]
        return text.format(**values) if values else text

    def enum(self, kind: str, value: str) -> str:
        pair = _ENUMS.get(kind, {}).get(value)
        return value if pair is None else pair[self._index]

    def yes_no(self, value: bool) -> str:
        return self("yes" if value else "no")

    @property
    def _index(self) -> int:
        return 1 if self.lang == "zh" else 0


def enum_values(kind: str) -> tuple[str, ...]:
    """The values a kind of enum has labels for (for tests and completion)."""
    return tuple(_ENUMS[kind])


def text_keys() -> tuple[str, ...]:
    return tuple(_TEXT)
