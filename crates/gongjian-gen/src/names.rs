//! Chinese names and titles for the generated district: Gulou's thirteen
//! streets, community names built from its roads, resident units of the
//! kinds DOMAIN.md lists, and list titles by category.

/// Gulou's thirteen streets (DOMAIN.md, seed 002).
pub const STREETS: [&str; 13] = [
    "宁海路街道",
    "华侨路街道",
    "湖南路街道",
    "中央门街道",
    "挹江门街道",
    "江东街道",
    "凤凰街道",
    "阅江楼街道",
    "热河南路街道",
    "幕府山街道",
    "建宁路街道",
    "宝塔桥街道",
    "小市街道",
];

const ROADS: [&str; 40] = [
    "颐和路",
    "北京西路",
    "江苏路",
    "宁海路",
    "山西路",
    "湖南路",
    "中山北路",
    "虎踞路",
    "广州路",
    "上海路",
    "汉口路",
    "青岛路",
    "天竺路",
    "峨嵋路",
    "西康路",
    "牯岭路",
    "莫愁路",
    "清凉山",
    "古平岗",
    "草场门",
    "龙江",
    "阅江楼",
    "幕府山",
    "金川门",
    "小桃园",
    "热河路",
    "大桥",
    "宝塔桥",
    "三牌楼",
    "南祖师庵",
    "定淮门",
    "石头城",
    "随家仓",
    "五台山",
    "华侨路",
    "估衣廊",
    "丁家桥",
    "童家巷",
    "凤凰西街",
    "江东门",
];

const SUFFIXES: [&str; 6] = ["", "东", "西", "南", "北", "新村"];

/// The name of community `i` (0-based, unique up to 240).
pub fn community(i: usize) -> String {
    let road = ROADS[i % ROADS.len()];
    let suffix = SUFFIXES[(i / ROADS.len()) % SUFFIXES.len()];
    let round = i / (ROADS.len() * SUFFIXES.len());
    if round == 0 {
        format!("{road}{suffix}社区")
    } else {
        format!("{road}{suffix}第{}社区", round + 1)
    }
}

/// The name of street `i`; beyond Gulou's thirteen (scaled districts), a
/// numbered one.
pub fn street(i: usize) -> String {
    match STREETS.get(i) {
        Some(s) => (*s).to_owned(),
        None => format!(
            "{}（{}）",
            STREETS[i % STREETS.len()],
            i / STREETS.len() + 1
        ),
    }
}

const RESIDENT_KINDS: [(&str, &str); 8] = [
    ("医院", "{}医院"),
    ("学校", "南京市{}中学"),
    ("小学", "{}小学"),
    ("企业", "南京{}科技有限公司"),
    ("机关", "鼓楼区{}管理局"),
    ("物业", "{}物业管理有限公司"),
    ("银行", "{}银行鼓楼支行"),
    ("社会组织", "{}社会工作服务中心"),
];

const BRANDS: [&str; 24] = [
    "金陵", "石城", "钟山", "秦淮", "玄武", "紫金", "扬子", "江宁", "栖霞", "仙林", "凤凰", "鼓楼",
    "清凉", "龙江", "滨江", "明城", "朝天", "乌衣", "桃叶", "白鹭", "长干", "雨花", "燕子", "汇文",
];

/// The name and kind label of resident unit `i`.
pub fn resident(i: usize) -> (String, &'static str) {
    let (kind, pattern) = RESIDENT_KINDS[i % RESIDENT_KINDS.len()];
    let brand = BRANDS[(i / RESIDENT_KINDS.len()) % BRANDS.len()];
    let round = i / (RESIDENT_KINDS.len() * BRANDS.len());
    let base = if round == 0 {
        brand.to_owned()
    } else {
        format!("{brand}{}", round + 1)
    };
    (pattern.replace("{}", &base), kind)
}

/// Categories of needs, resources and services.
pub const CATEGORIES: [&str; 8] = [
    "助老", "助残", "助学", "医疗", "就业", "环境", "文化", "安全",
];

/// Titles of needs by category.
pub fn need(category: &str) -> &'static [&'static str] {
    match category {
        "助老" => &[
            "独居老人助餐",
            "老年人上门理发",
            "空巢老人定期探访",
            "适老化改造评估",
        ],
        "助残" => &["残疾人康复训练", "无障碍坡道修缮", "盲道占用清理"],
        "助学" => &["儿童课后托管", "暑期学生看护", "困难家庭学生辅导"],
        "医疗" => &["义诊进社区", "慢病随访", "家庭医生签约咨询"],
        "就业" => &["失业人员技能培训", "就业岗位推介"],
        "环境" => &["楼道照明维修", "老旧小区加装电梯", "绿化带补植"],
        "文化" => &["社区图书角", "老年合唱团场地", "周末电影放映"],
        _ => &["消防器材检查", "电动车充电桩安装", "楼道堆物清理"],
    }
}

/// Titles of resources by category (what a resident unit offers).
pub fn resource(category: &str) -> &'static [&'static str] {
    match category {
        "助老" => &["食堂助餐配送", "志愿者陪护"],
        "助残" => &["康复器材借用", "手语志愿服务"],
        "助学" => &["教师志愿辅导", "图书捐赠"],
        "医疗" => &["医护志愿者", "健康讲座"],
        "就业" => &["实习岗位", "职业规划讲座"],
        "环境" => &["绿化养护队", "保洁志愿服务"],
        "文化" => &["会议场地", "活动室开放"],
        _ => &["安全知识培训", "消防演练指导"],
    }
}

/// Titles of projects (项目清单).
pub const PROJECTS: [&str; 12] = [
    "爱心助餐点共建",
    "老旧小区微改造",
    "社区健康小屋",
    "四点半课堂",
    "邻里文化节",
    "垃圾分类示范点",
    "楼道美化",
    "口袋公园共建",
    "党员先锋岗",
    "防汛应急物资储备",
    "智慧养老呼叫",
    "共享工具屋",
];

/// Problems found in grids (问题清单).
pub const PROBLEMS: [&str; 12] = [
    "楼道堆物占用消防通道",
    "路灯损坏",
    "垃圾分类点脏乱",
    "违章停车堵塞通道",
    "下水道堵塞",
    "外墙瓷砖脱落",
    "电动车楼道充电",
    "噪音扰民",
    "井盖缺失",
    "绿地被占种菜",
    "屋顶漏水",
    "共享单车乱停放",
];

/// Micro-wishes (微心愿).
pub const WISHES: [&str; 10] = [
    "一台助听器",
    "儿童绘本一套",
    "一辆轮椅",
    "冬季棉被",
    "学习台灯",
    "老人手机",
    "书包文具",
    "血压计",
    "电饭煲",
    "保温水壶",
];

/// Whistles (吹哨).
pub const WHISTLES: [&str; 8] = [
    "汛期排水点位巡查",
    "老旧小区加装电梯协调",
    "背街小巷环境整治",
    "疫情防控值守",
    "违建拆除协调",
    "冬季扫雪除冰",
    "消防通道集中清理",
    "重大活动安保",
];

/// Services (服务清单): two-way entries named in agreements.
pub const SERVICES: [&str; 10] = [
    "法律咨询",
    "义诊服务",
    "场地开放",
    "志愿服务",
    "技能培训",
    "文体活动",
    "助餐服务",
    "心理疏导",
    "青少年教育",
    "应急救援",
];

/// Responsibilities (责任清单).
pub const RESPONSIBILITIES: [&str; 5] =
    ["门前三包", "网格巡查", "结对帮扶", "环境卫生", "平安巡防"];

/// Surnames and given names for grid leaders.
const SURNAMES: [&str; 16] = [
    "王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙", "朱", "马", "胡", "郭",
];
const GIVEN: [&str; 16] = [
    "芳", "伟", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明",
];

pub fn person(i: usize) -> String {
    format!(
        "{}{}",
        SURNAMES[i % SURNAMES.len()],
        GIVEN[(i / SURNAMES.len()) % GIVEN.len()]
    )
}
